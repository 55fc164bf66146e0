//go:build e2e

package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// deleteRobotByHand deletes a robot through Quay's API, as an admin in
// Quay's UI would.
func (s *stack) deleteRobotByHand(t testing.TB, short string) {
	t.Helper()
	code, body := s.Quay.Do(t, http.MethodDelete, "/api/v1/organization/"+s.Org+"/robots/"+short, s.Quay.BootstrapToken, nil)
	if code != http.StatusNoContent {
		t.Fatalf("deleting robot %s by hand: %d %s", short, code, body)
	}
}

// A static robot deleted by hand works again after one static-creds read,
// through a real Vault: a robot with the same name, a new token and its
// role's grants; the read's warnings and Vault's log say what happened.
func TestStaticRobotDeletedByHandWorksAfterOneRead(t *testing.T) {
	s := newStack(t)
	s.seedRepo(t, "app")
	s.Vault.MustCLI(t, "write", mount+"/static-roles/pull", "namespace_name="+s.Org, `repositories={"app":"write"}`)
	var before cliSecret
	s.Vault.CLIJSON(t, &before, []string{"read"}, mount+"/static-creds/pull")
	username, oldPassword := before.str(t, "username"), before.str(t, "password")

	s.deleteRobotByHand(t, "pull")
	if code, _ := s.registryLogin(t, username, oldPassword, "app"); code != http.StatusUnauthorized {
		t.Fatalf("the deleted robot's token: login %d, want 401", code)
	}

	s.Quay.Control.ResetCalls(t)
	var after cliSecret
	s.Vault.CLIJSON(t, &after, []string{"read"}, mount+"/static-creds/pull")
	calls := s.Quay.Control.Calls(t)
	if after.str(t, "username") != username {
		t.Fatalf("username after healing: %s, want %s", after.Data["username"], username)
	}
	newPassword := after.str(t, "password")
	if newPassword == oldPassword {
		t.Fatal("the read served the deleted robot's token (value not shown)")
	}
	if code, actions := s.registryLogin(t, username, newPassword, "app"); code != http.StatusOK || !sameSet(actions, []string{"pull", "push"}) {
		t.Fatalf("the healed robot: login %d, actions on app %v, want pull and push", code, actions)
	}
	if !strings.Contains(strings.Join(after.Warnings, " "), "was missing in Quay") {
		t.Errorf("the read does not say it healed the robot: %v", after.Warnings)
	}
	if calls["createOrgRobot"] != 1 || calls["changeUserPermissions"] != 1 {
		t.Errorf("Quay calls of the healing read: %v", calls)
	}
	if !strings.Contains(s.Vault.Log(), "static robot drifted") {
		t.Error("Vault's log does not report the drift")
	}
	if strings.Contains(s.Vault.Log(), newPassword) || strings.Contains(s.Vault.Log(), oldPassword) {
		t.Error("a robot token appears in Vault's log (not shown)")
	}

	// Healed: the next read is one Quay call and no warning.
	s.Quay.Control.ResetCalls(t)
	var again cliSecret
	s.Vault.CLIJSON(t, &again, []string{"read"}, mount+"/static-creds/pull")
	if calls := s.Quay.Control.Calls(t); len(calls) != 1 || calls["getOrgRobot"] != 1 || len(again.Warnings) != 0 {
		t.Errorf("the read after healing: calls %v, warnings %v", calls, again.Warnings)
	}
	if again.str(t, "password") != newPassword {
		t.Error("the healed token was not stored (values not shown)")
	}
}
