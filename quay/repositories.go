package quay

import (
	"context"
	"net/http"
	"net/url"
)

// Repository is the subset of Quay's repository view the plugin reads.
type Repository struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	IsPublic  bool   `json:"is_public"`
}

// FullName returns namespace/name.
func (r Repository) FullName() string { return r.Namespace + "/" + r.Name }

// NewRepository is the body of CreateRepository.
type NewRepository struct {
	Namespace   string `json:"namespace"`
	Repository  string `json:"repository"`
	Visibility  string `json:"visibility"`
	Description string `json:"description"`
}

// CreateRepository creates a repository (needs repo:create). A duplicate is a
// 400 "Repository already exists".
func (c *Client) CreateRepository(ctx context.Context, in NewRepository) error {
	if in.Visibility == "" {
		in.Visibility = "private"
	}
	return c.do(ctx, request{route: "createRepo", method: http.MethodPost, path: "/api/v1/repository", body: in}, nil)
}

// GetRepository returns a repository, or a 404 *Error.
func (c *Client) GetRepository(ctx context.Context, namespace, name string) (*Repository, error) {
	var repo Repository
	r := request{route: "getRepo", method: http.MethodGet, path: "/api/v1/repository/" + escape(namespace) + "/" + escape(name), idempotent: true}
	if err := c.do(ctx, r, &repo); err != nil {
		return nil, err
	}
	return &repo, nil
}

// ListRepositories lists the repositories of a namespace, following Quay's
// next_page cursor.
func (c *Client) ListRepositories(ctx context.Context, namespace string) ([]Repository, error) {
	var all []Repository
	err := eachPage(ctx, func(cursor string) (string, error) {
		q := url.Values{"namespace": {namespace}}
		if cursor != "" {
			q.Set("next_page", cursor)
		}
		var page struct {
			Repositories []Repository `json:"repositories"`
			NextPage     string       `json:"next_page"`
		}
		if err := c.do(ctx, request{route: "listRepos", method: http.MethodGet, path: "/api/v1/repository", query: q, idempotent: true}, &page); err != nil {
			return "", err
		}
		all = append(all, page.Repositories...)
		return page.NextPage, nil
	})
	if err != nil {
		return nil, err
	}
	return all, nil
}
