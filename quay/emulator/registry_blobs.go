package emulator

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// repoBlobs stores blobs per repository. go-containerregistry's in-memory
// handler shares blobs between repositories, so a pull grant on one
// repository would read another's layers by digest; in Quay a blob must be
// linked to the repository (BLOB_UNKNOWN otherwise), and only a mount with
// read access on the source links it elsewhere.
type repoBlobs struct {
	mu sync.Mutex
	m  map[string]map[string][]byte // repository -> digest -> content
}

func newRepoBlobs() *repoBlobs { return &repoBlobs{m: map[string]map[string][]byte{}} }

// repositoryKey carries the request's repository to the blob handler:
// go-containerregistry passes upload requests a repository name that
// still ends in "/blobs".
type repositoryKey struct{}

func withRepository(r *http.Request, repository string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), repositoryKey{}, repository))
}

func repositoryOf(ctx context.Context, fallback string) string {
	if repo, ok := ctx.Value(repositoryKey{}).(string); ok {
		return repo
	}
	return fallback
}

func (b *repoBlobs) lookup(repo string, h v1.Hash) ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	data, ok := b.m[repo][h.String()]
	return data, ok
}

func (b *repoBlobs) Stat(ctx context.Context, repo string, h v1.Hash) (int64, error) {
	data, ok := b.lookup(repositoryOf(ctx, repo), h)
	if !ok {
		return 0, registry.ErrNotFound
	}
	return int64(len(data)), nil
}

func (b *repoBlobs) Get(ctx context.Context, repo string, h v1.Hash) (io.ReadCloser, error) {
	data, ok := b.lookup(repositoryOf(ctx, repo), h)
	if !ok {
		return nil, registry.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func (b *repoBlobs) Put(ctx context.Context, repo string, h v1.Hash, rc io.ReadCloser) error {
	repo = repositoryOf(ctx, repo)
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m[repo] == nil {
		b.m[repo] = map[string][]byte{}
	}
	b.m[repo][h.String()] = data
	return nil
}

func (b *repoBlobs) Delete(ctx context.Context, repo string, h v1.Hash) error {
	repo = repositoryOf(ctx, repo)
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.m[repo][h.String()]; !ok {
		return registry.ErrNotFound
	}
	delete(b.m[repo], h.String())
	return nil
}

// link makes the blob of from available in repo (a mount).
func (b *repoBlobs) link(from, repo string, h v1.Hash) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	data, ok := b.m[from][h.String()]
	if !ok {
		return false
	}
	if b.m[repo] == nil {
		b.m[repo] = map[string][]byte{}
	}
	b.m[repo][h.String()] = data
	return true
}

// mountBlob answers a mount request (POST /v2/<repo>/blobs/uploads/?mount=
// &from=) for a caller allowed to read the source: 201 with the blob's
// Location when the source has it (endpoints/v2/blob.py
// _try_to_mount_blob). It reports whether it answered.
func (e *Emulator) mountBlob(w http.ResponseWriter, r *http.Request, repository, from, digest string) bool {
	h, err := v1.NewHash(digest)
	if err != nil || !e.blobs.link(from, repository, h) {
		return false
	}
	w.Header().Set("Docker-Content-Digest", h.String())
	w.Header().Set("Location", e.cfg.scheme()+"://"+e.host(r)+"/v2/"+repository+"/blobs/"+h.String())
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	w.WriteHeader(http.StatusCreated)
	return true
}
