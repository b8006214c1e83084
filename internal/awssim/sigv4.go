package awssim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// sigV4 is what a request's SigV4 signature covers, prepared outside the lock.
type sigV4 struct {
	keyID        string
	scope        string // date/region/service/aws4_request
	date, region string
	service      string
	stringToSign string
	signature    []byte
}

// parseSigV4 reads "AWS4-HMAC-SHA256 Credential=AKID/scope, SignedHeaders=a;b, Signature=hex"
// and builds the string to sign the way aws-sdk-go-v2's signer does. It
// returns nil when the header is missing or malformed.
func parseSigV4(r *http.Request, body []byte) *sigV4 {
	auth := r.Header.Get("Authorization")
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algo) {
		return nil
	}
	var cred, signed, sig string
	for _, part := range strings.Split(auth[len(algo):], ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signed = v
		case "Signature":
			sig = v
		}
	}
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" || signed == "" {
		return nil
	}
	signature, err := hex.DecodeString(sig)
	if err != nil {
		return nil
	}
	var canon strings.Builder
	canon.WriteString(r.Method + "\n")
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	canon.WriteString(path + "\n")
	canon.WriteString(canonicalQuery(r) + "\n")
	for _, h := range strings.Split(signed, ";") {
		var v string
		switch h {
		case "host":
			v = r.Host
		case "content-length":
			v = strconv.FormatInt(r.ContentLength, 10)
		default:
			vals := r.Header.Values(h)
			for i := range vals {
				vals[i] = strings.Join(strings.Fields(vals[i]), " ")
			}
			v = strings.Join(vals, ",")
		}
		canon.WriteString(h + ":" + v + "\n")
	}
	canon.WriteString("\n" + signed + "\n")
	payload := sha256.Sum256(body)
	canon.WriteString(hex.EncodeToString(payload[:]))
	creq := sha256.Sum256([]byte(canon.String()))
	scope := strings.Join(parts[1:], "/")
	return &sigV4{
		keyID:        parts[0],
		scope:        scope,
		date:         parts[1],
		region:       parts[2],
		service:      parts[3],
		stringToSign: "AWS4-HMAC-SHA256\n" + r.Header.Get("X-Amz-Date") + "\n" + scope + "\n" + hex.EncodeToString(creq[:]),
		signature:    signature,
	}
}

func canonicalQuery(r *http.Request) string {
	if r.URL.RawQuery == "" {
		return ""
	}
	q := strings.Split(r.URL.RawQuery, "&")
	sort.Strings(q)
	return strings.Join(q, "&")
}

// verify reports whether the signature was made with secret.
func (v *sigV4) verify(secret string) bool {
	mac := func(key []byte, data string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(data))
		return h.Sum(nil)
	}
	k := mac([]byte("AWS4"+secret), v.date)
	k = mac(k, v.region)
	k = mac(k, v.service)
	k = mac(k, "aws4_request")
	return hmac.Equal(mac(k, v.stringToSign), v.signature)
}
