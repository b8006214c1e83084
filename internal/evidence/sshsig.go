package evidence

// The pack's signature is an OpenSSH signature (PROTOCOL.sshsig in OpenSSH's source):
// what `ssh-keygen -Y sign` writes and `ssh-keygen -Y verify` checks, so an auditor
// needs no rootwarden to check a pack. Namespace Namespace, hash SHA-512.

import (
	"bytes"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Namespace is the SSHSIG namespace of evidence packs (ssh-keygen -n).
const Namespace = "rootwarden-evidence"

const (
	sigMagic   = "SSHSIG"
	sigVersion = 1
	sigHash    = "sha512"
	armorBegin = "-----BEGIN SSH SIGNATURE-----"
	armorEnd   = "-----END SSH SIGNATURE-----"
)

// Signer signs packs with the operator's SSH private key.
type Signer struct {
	s ssh.Signer
}

// NewSigner reads an OpenSSH (or PEM) private key without a passphrase: Ed25519,
// ECDSA or RSA (signed with rsa-sha2-512).
func NewSigner(pemBytes []byte) (*Signer, error) {
	s, err := ssh.ParsePrivateKey(pemBytes)
	if err != nil {
		var pp *ssh.PassphraseMissingError
		if errors.As(err, &pp) {
			return nil, errors.New("read the evidence signing key: it has a passphrase; give a key without one (keep it in a secret store)")
		}
		return nil, fmt.Errorf("read the evidence signing key: %w", err)
	}
	return &Signer{s: s}, nil
}

// PublicKey is the signer's public key in authorized_keys form ("ssh-ed25519 AAAA…").
func (s *Signer) PublicKey() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.s.PublicKey())))
}

// Sign returns the armored SSH signature of data ("-----BEGIN SSH SIGNATURE-----…").
func (s *Signer) Sign(data []byte) ([]byte, error) {
	h := sha512.Sum512(data)
	signed := signedData(Namespace, h[:])
	var sig *ssh.Signature
	var err error
	if as, ok := s.s.(ssh.AlgorithmSigner); ok && s.s.PublicKey().Type() == ssh.KeyAlgoRSA {
		sig, err = as.SignWithAlgorithm(rand.Reader, signed, ssh.KeyAlgoRSASHA512)
	} else {
		sig, err = s.s.Sign(rand.Reader, signed)
	}
	if err != nil {
		return nil, fmt.Errorf("sign the evidence pack: %w", err)
	}
	var blob bytes.Buffer
	blob.WriteString(sigMagic)
	_ = binary.Write(&blob, binary.BigEndian, uint32(sigVersion))
	putString(&blob, s.s.PublicKey().Marshal())
	putString(&blob, []byte(Namespace))
	putString(&blob, nil) // reserved
	putString(&blob, []byte(sigHash))
	putString(&blob, ssh.Marshal(sig))
	enc := base64.StdEncoding.EncodeToString(blob.Bytes())
	var out bytes.Buffer
	out.WriteString(armorBegin + "\n")
	for len(enc) > 70 {
		out.WriteString(enc[:70] + "\n")
		enc = enc[70:]
	}
	out.WriteString(enc + "\n" + armorEnd + "\n")
	return out.Bytes(), nil
}

// VerifySignature checks an armored SSH signature of data in Namespace and returns the
// signer's public key (authorized_keys form). It is what `ssh-keygen -Y
// check-novalidate` does; whether the key is the operator's is the reader's call.
func VerifySignature(data, armored []byte) (string, error) {
	text := strings.TrimSpace(string(armored))
	text, ok := strings.CutPrefix(text, armorBegin)
	if !ok {
		return "", errors.New("not an SSH signature (no BEGIN SSH SIGNATURE line)")
	}
	text, ok = strings.CutSuffix(text, armorEnd)
	if !ok {
		return "", errors.New("not an SSH signature (no END SSH SIGNATURE line)")
	}
	blob, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text), ""))
	if err != nil {
		return "", fmt.Errorf("decode the SSH signature: %w", err)
	}
	if !bytes.HasPrefix(blob, []byte(sigMagic)) || len(blob) < 10 {
		return "", errors.New("not an SSHSIG blob")
	}
	r := blob[len(sigMagic):]
	if binary.BigEndian.Uint32(r) != sigVersion {
		return "", errors.New("unsupported SSHSIG version")
	}
	r = r[4:]
	var fields [5][]byte
	for i := range fields {
		if fields[i], r, ok = getString(r); !ok {
			return "", errors.New("truncated SSHSIG blob")
		}
	}
	pub, err := ssh.ParsePublicKey(fields[0])
	if err != nil {
		return "", fmt.Errorf("the signature's public key: %w", err)
	}
	if string(fields[1]) != Namespace {
		return "", fmt.Errorf("signature namespace is %q, not %q", fields[1], Namespace)
	}
	var h []byte
	switch string(fields[3]) {
	case "sha512":
		s := sha512.Sum512(data)
		h = s[:]
	default:
		return "", fmt.Errorf("unsupported hash %q", fields[3])
	}
	var sig ssh.Signature
	if err := ssh.Unmarshal(fields[4], &sig); err != nil {
		return "", fmt.Errorf("the signature: %w", err)
	}
	if err := pub.Verify(signedData(Namespace, h), &sig); err != nil {
		return "", fmt.Errorf("the signature does not match the pack: %w", err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))), nil
}

func signedData(namespace string, hash []byte) []byte {
	var b bytes.Buffer
	b.WriteString(sigMagic)
	putString(&b, []byte(namespace))
	putString(&b, nil)
	putString(&b, []byte(sigHash))
	putString(&b, hash)
	return b.Bytes()
}

func putString(b *bytes.Buffer, s []byte) {
	_ = binary.Write(b, binary.BigEndian, uint32(len(s)))
	b.Write(s)
}

func getString(b []byte) (s, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(len(b)-4) < uint64(n) {
		return nil, nil, false
	}
	return b[4 : 4+n], b[4+n:], true
}
