package backend

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// "Secrets never reach ... a test's output": commits 97ba528 and 3bc6170
// replaced the comparisons of secrets with assertSameSecret and friends,
// but left the assertions that check a secret is ABSENT from an answer with
// testify's printing forms, and e2e messages that print what they found.
// Each stays silent while the boundary holds and, the day it breaks, prints
// the leaked credential into the CI log:
//   - assert.NotContains(t, read.Data, "password") prints read.Data, the
//     password included, when the password is there;
//   - assert.NotEqual(t, old, current) on two robot tokens prints the token
//     when the rotation did not change it;
//   - assert.Equal(t, auth, resp.Data["auth"]) prints base64(user:password),
//     and require.Len(t, token, 40) prints the token when its length is off;
//   - e2e: t.Fatalf("... (table) shows the token:\n%s", table) prints the
//     table that holds the token; t.Errorf("config read has a token field:
//     %v", cfg.Data) prints the token field; cliSecret.str prints a creds
//     answer's whole data (password, token) when one key is missing.
//
// This test reads the test sources and lists every such assertion.
func TestReview_TestsPrintTheSecretTheyFindLeaked(t *testing.T) {
	var files []string
	for _, pattern := range []string{"*_test.go", "../e2e/*_test.go"} {
		matches, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, matches...)
	}
	var found []string
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasPrefix(filepath.Base(file), "review_") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			secretVars := secretBoundIdents(fn.Body)
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				if why := printsASecret(call, secretVars); why != "" {
					found = append(found, fset.Position(call.Pos()).String()+": "+why)
				}
				return true
			})
		}
	}
	if len(found) > 0 {
		t.Errorf("%d assertions print the secret they find (values not shown here):\n%s", len(found), strings.Join(found, "\n"))
	}
}

// secretFields are response fields that hold a credential.
var secretFields = []string{"token", "password", "auth", "docker_config_json", "oidc_client_secret", "client_secret", "private_key"}

// secretBoundIdents are the variables of a function assigned from a
// response's secret field or from the output of the Vault CLI.
func secretBoundIdents(body *ast.BlockStmt) map[string]string {
	vars := map[string]string{}
	ast.Inspect(body, func(n ast.Node) bool {
		assign, ok := n.(*ast.AssignStmt)
		if !ok {
			return true
		}
		for i, lhs := range assign.Lhs {
			id, ok := lhs.(*ast.Ident)
			if !ok || i >= len(assign.Rhs) && len(assign.Rhs) != 1 {
				continue
			}
			rhs := assign.Rhs[min(i, len(assign.Rhs)-1)]
			if field := secretFieldIn(rhs); field != "" {
				vars[id.Name] = "holds the issued " + field
			} else if cliOutput(rhs) {
				vars[id.Name] = "holds Vault CLI output"
			}
		}
		return true
	})
	return vars
}

// secretFieldIn finds X.Data["<secret field>"] in an expression.
func secretFieldIn(e ast.Expr) string {
	var field string
	ast.Inspect(e, func(n ast.Node) bool {
		idx, ok := n.(*ast.IndexExpr)
		if !ok {
			return true
		}
		sel, ok := idx.X.(*ast.SelectorExpr)
		lit, isLit := idx.Index.(*ast.BasicLit)
		if ok && isLit && sel.Sel.Name == "Data" {
			if v, err := strconv.Unquote(lit.Value); err == nil && slices.Contains(secretFields, v) {
				field = v
			}
		}
		return true
	})
	return field
}

func cliOutput(e ast.Expr) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "MustCLI"
}

func isDataMap(e ast.Expr) bool {
	sel, ok := e.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "Data"
}

// printsASecret says why a call prints a secret when it fails, or "".
func printsASecret(call *ast.CallExpr, secretVars map[string]string) string {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return ""
	}
	pkg, _ := sel.X.(*ast.Ident)
	method := sel.Sel.Name
	testify := pkg != nil && (pkg.Name == "assert" || pkg.Name == "require")
	switch {
	case testify && (method == "Len" || method == "NotEmpty" || method == "Regexp") && len(call.Args) >= 2:
		arg := call.Args[1]
		if method == "Regexp" && len(call.Args) >= 3 {
			arg = call.Args[2]
		}
		if id, ok := arg.(*ast.Ident); ok && strings.HasPrefix(secretVars[id.Name], "holds the issued") {
			return method + " prints " + id.Name + " when it fails, which " + secretVars[id.Name]
		}
	case testify && (method == "NotContains" || method == "Contains") && len(call.Args) >= 3:
		lit, ok := call.Args[2].(*ast.BasicLit)
		if !ok || !isDataMap(call.Args[1]) {
			return ""
		}
		if v, err := strconv.Unquote(lit.Value); err == nil && slices.Contains(secretFields, v) {
			return method + " on a response's Data checks for " + strconv.Quote(v) + " and prints the map, that field's value included"
		}
	case testify && (method == "Equal" || method == "NotEqual" || method == "EqualValues") && len(call.Args) >= 3:
		for _, arg := range call.Args[1:3] {
			if id, ok := arg.(*ast.Ident); ok && strings.HasPrefix(secretVars[id.Name], "holds the issued") {
				return method + " prints " + id.Name + ", which " + secretVars[id.Name]
			}
			if field := secretFieldIn(arg); field != "" {
				return method + " prints the issued " + field
			}
		}
	case !testify && slices.Contains([]string{"Fatalf", "Errorf", "Logf", "Fatal", "Error", "Log"}, method) && len(call.Args) >= 2:
		format, ok := call.Args[0].(*ast.BasicLit)
		if !ok {
			return ""
		}
		lower := strings.ToLower(format.Value)
		if !strings.Contains(lower, "token") && !strings.Contains(lower, "password") && !strings.Contains(lower, "secret") {
			return ""
		}
		for _, arg := range call.Args[1:] {
			if isDataMap(arg) {
				return method + " about a secret prints a response's Data"
			}
			if id, ok := arg.(*ast.Ident); ok && secretVars[id.Name] != "" {
				return method + " about a secret prints " + id.Name + ", which " + secretVars[id.Name]
			}
		}
	}
	return ""
}
