// Package keyfile loads a signing identity (certificate, intermediates and private key) from PEM files,
// accepting what aws_signing_helper accepts: a certificate file whose first certificate is the leaf and
// whose others are intermediates, an optional separate intermediates bundle, and an unencrypted private
// key in PKCS#1 ("RSA PRIVATE KEY"), SEC 1 ("EC PRIVATE KEY") or PKCS#8 ("PRIVATE KEY") form.
//
// It exists for the one-shot commands' file source (package credentialprocess); the daemon and the
// Workload API path never read a key from disk. Run as root, it reads only files that no one but root can
// have written, nor the directories above them (internal/trusted): a key another user could replace would
// let them choose the identity, and so the AWS account, root's commands act in.
package keyfile

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/trusted"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
)

// Load reads the leaf (and any chain after it) from certPath, more intermediates from intermediatesPath
// when it is not empty, and the private key from keyPath. It checks that the key is a supported type and
// belongs to the leaf. Errors name the file and what is wrong with it, never key material.
func Load(certPath, keyPath, intermediatesPath string) (signer.Identity, error) {
	var id signer.Identity
	certs, err := readCertificates(certPath)
	if err != nil {
		return id, err
	}
	id.Leaf, id.Intermediates = certs[0], certs[1:]
	if intermediatesPath != "" {
		more, err := readCertificates(intermediatesPath)
		if err != nil {
			return id, err
		}
		id.Intermediates = append(id.Intermediates, more...)
	}
	if id.Key, err = readKey(keyPath); err != nil {
		return id, err
	}
	if err := id.Check(); err != nil {
		return id, fmt.Errorf("keyfile: %s with %s: %w", certPath, keyPath, err)
	}
	return id, nil
}

// maxFileSize bounds each PEM file read: far more than a key and a chain of certificates.
const maxFileSize = 1 << 20

func readCertificates(path string) ([]*x509.Certificate, error) {
	data, err := trusted.ReadFile(path, trusted.Options{What: "certificate file", MaxSize: maxFileSize})
	if err != nil {
		return nil, fmt.Errorf("keyfile: reading certificates: %w", err)
	}
	var certs []*x509.Certificate
	rest := data
	for i := 1; ; i++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("keyfile: %s: PEM block %d is %q, want CERTIFICATE", path, i, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("keyfile: %s: certificate %d: %w", path, i, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		// aws_signing_helper also takes a single DER certificate.
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, fmt.Errorf("keyfile: %s holds no PEM certificate and is not a DER certificate", path)
		}
		certs = append(certs, c)
	}
	return certs, nil
}

func readKey(path string) (crypto.Signer, error) {
	data, err := trusted.ReadFile(path, trusted.Options{What: "private key file", MaxSize: maxFileSize})
	if err != nil {
		return nil, fmt.Errorf("keyfile: reading the private key: %w", err)
	}
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("keyfile: %s holds no PEM private key (RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY)", path)
		}
		if x509.IsEncryptedPEMBlock(block) { //nolint:staticcheck // only to give a clear error
			return nil, encryptedKeyError(path)
		}
		var key any
		switch block.Type {
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, encryptedKeyError(path)
		case "EC PARAMETERS":
			continue // openssl ecparam -genkey writes these before the key
		default:
			return nil, fmt.Errorf("keyfile: %s: PEM block %q is not a private key", path, block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("keyfile: %s: %s: %w", path, block.Type, err)
		}
		s, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("keyfile: %s: %T cannot sign", path, key)
		}
		if _, err := signer.Algorithm(s); err != nil {
			var ke *signer.KeyError
			if errors.As(err, &ke) {
				return nil, fmt.Errorf("keyfile: %s: %w", path, err)
			}
			return nil, err
		}
		return s, nil
	}
}

// encryptedKeyError says that the key at path is encrypted and how to write a decrypted copy: the key
// signs unattended, so there is nobody to type a passphrase.
func encryptedKeyError(path string) error {
	return fmt.Errorf("keyfile: %s is an encrypted private key, which cannot be used unattended; write a decrypted copy "+
		"readable only by this user (openssl pkey -in %s -out key-plain.pem; chmod 600 key-plain.pem) and pass that, "+
		"or better, drop --certificate/--private-key and sign with the Workload API's X.509-SVID", path, path)
}
