//go:build e2e

package e2e

import (
	"testing"
)

// BenchmarkCredsReadVsKV compares, on the same dev Vault, a read of
// quay/creds/<role> (plugin process over gRPC, one token minted in the Quay
// emulator over HTTP, a lease registered) with a kv-v2 read, Vault's cheapest
// authenticated read. Both go through the same HTTP API client.
//
//	make bench   # or: go test -tags e2e -run '^$' -bench CredsReadVsKV ./e2e/
func BenchmarkCredsReadVsKV(b *testing.B) {
	s := newStack(b)
	s.writeOAuthRole(b, "bench", "ttl=1h", "max_ttl=2h")
	s.Vault.MustCLI(b, "kv", "put", "secret/bench", "username=demo", "password=not-a-secret")

	b.Run("quay_creds", func(b *testing.B) {
		c := s.Vault.Client
		b.ReportAllocs()
		for b.Loop() {
			sec, err := c.Logical().Read(mount + "/creds/bench")
			if err != nil {
				b.Fatal(err)
			}
			if sec == nil || sec.LeaseID == "" {
				b.Fatal("creds read returned no lease")
			}
		}
		b.StopTimer()
		// Every read left a lease and a token in Quay; end them before the
		// next round so rounds measure the same state.
		if err := c.Sys().RevokePrefix(mount + "/creds/bench"); err != nil {
			b.Fatal(err)
		}
	})

	b.Run("kv_v2", func(b *testing.B) {
		kv := s.Vault.Client.KVv2("secret")
		b.ReportAllocs()
		for b.Loop() {
			sec, err := kv.Get(b.Context(), "bench")
			if err != nil {
				b.Fatal(err)
			}
			if sec.Data["username"] != "demo" {
				b.Fatalf("kv read returned %v", sec.Data)
			}
		}
	})

	if ids := s.Vault.LeaseIDs(b, mount+"/creds/bench"); len(ids) != 0 {
		b.Fatalf("%d creds leases left after the benchmark", len(ids))
	}
}

// BenchmarkStaticCredsRead measures a static-creds read through a real
// Vault: a healthy robot (the one Quay call that checks it) and a robot
// deleted by hand before each read (the read that creates it again, grants
// it and stores it). quay-calls/op counts what reached the emulator.
//
//	make bench   # or: go test -tags e2e -run '^$' -bench StaticCredsRead ./e2e/
func BenchmarkStaticCredsRead(b *testing.B) {
	s := newStack(b)
	s.seedRepo(b, "app")
	s.Vault.MustCLI(b, "write", mount+"/static-roles/pull", "namespace_name="+s.Org, `repositories={"app":"read"}`, `teams={"builders":"member"}`)
	for _, heal := range []bool{false, true} {
		name := "healthy"
		if heal {
			name = "deleted_by_hand"
		}
		b.Run(name, func(b *testing.B) {
			c := s.Vault.Client
			calls := 0
			for b.Loop() {
				if heal {
					b.StopTimer()
					s.deleteRobotByHand(b, "pull")
					b.StartTimer()
				}
				b.StopTimer()
				s.Quay.Control.ResetCalls(b)
				b.StartTimer()
				sec, err := c.Logical().Read(mount + "/static-creds/pull")
				if err != nil || sec == nil || sec.Data["password"] == nil {
					b.Fatalf("static-creds: %v", err)
				}
				b.StopTimer()
				for _, n := range s.Quay.Control.Calls(b) {
					calls += n
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(calls)/float64(b.N), "quay-calls/op")
		})
	}
}
