package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const secretFile = "jwt-secret"

// loadSecret returns the signing secret: the flag's value if set, else the
// one kept in the data directory, created there when create is true.
func loadSecret(flagValue, dataDir string, create bool) ([]byte, error) {
	if flagValue != "" {
		return []byte(flagValue), nil
	}
	path := filepath.Join(dataDir, secretFile)
	b, err := os.ReadFile(path)
	if err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return []byte(s), nil
		}
		return nil, fmt.Errorf("%s is empty", path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("failed to read signing secret: %w", err)
	}
	if !create {
		return nil, fmt.Errorf("no --jwt-secret given and no %s (run serve once, or pass the secret)", path)
	}
	secret := string(randomSecret())
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create data dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return loadSecret("", dataDir, false) // another process made it first
	}
	if err != nil {
		return nil, fmt.Errorf("failed to write signing secret: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(secret + "\n"); err != nil {
		return nil, fmt.Errorf("failed to write signing secret: %w", err)
	}
	return []byte(secret), nil
}

// randomSecret returns a new random signing secret.
func randomSecret() []byte {
	raw := make([]byte, 32)
	rand.Read(raw)
	return []byte(hex.EncodeToString(raw))
}
