package transport_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/transport"
)

// openAPIValidator is built once from the embedded description; building
// it compiles every schema.
var openAPIValidator = sync.OnceValues(func() (validator.Validator, error) {
	doc, err := libopenapi.NewDocument(transport.OpenAPI())
	if err != nil {
		return nil, err
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return v, nil
})

// checkOpenAPI fails the test unless resp (an answer to resp.Request) is
// one the OpenAPI description allows: a documented status, content type and
// body. The body is read and put back for the caller.
func checkOpenAPI(t *testing.T, resp *http.Response) {
	t.Helper()
	if resp.Request == nil {
		t.Fatal("checkOpenAPI needs the answer's request (http.ReadResponse's second argument)")
	}
	v, err := openAPIValidator()
	if err != nil {
		t.Fatalf("failed to load the OpenAPI description: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("failed to read the answer: %v", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	check := *resp
	check.Body = io.NopCloser(bytes.NewReader(body))
	if ok, errs := v.ValidateHttpResponse(resp.Request, &check); !ok {
		var msgs []string
		for _, e := range errs {
			msgs = append(msgs, e.Error())
		}
		t.Fatalf("%s %s answered %d %s, which the OpenAPI description does not allow:\n%s",
			resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, body, strings.Join(msgs, "\n"))
	}
}

func TestOpenAPIDescriptionIsValid(t *testing.T) {
	v, err := openAPIValidator()
	if err != nil {
		t.Fatalf("failed to load the OpenAPI description: %v", err)
	}
	if ok, errs := v.ValidateDocument(); !ok {
		for _, e := range errs {
			t.Error(e)
		}
		t.Fatal("the OpenAPI description is not valid OpenAPI 3.1")
	}
}

// TestOpenAPIServed: the description is served as it is kept, and the
// answers of the routes the transport has without admin tokens match it.
func TestOpenAPIServed(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, replicaOptions{})
	for _, path := range []string{"/openapi.json", "/healthz", "/readyz", "/v1/sites/acme/status", "/v1/sites/acme/status?group=sales", "/v1/sites/a*b/status"} {
		resp, err := http.Get(r.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		checkOpenAPI(t, resp)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if path == "/openapi.json" && !bytes.Equal(body, transport.OpenAPI()) {
			t.Fatal("GET /openapi.json does not answer the embedded description")
		}
	}
}

// TestOpenAPILintRules holds, without node, what `redocly lint` (run by
// CI, see redocly.yaml) counts as errors under its recommended rules:
// servers are listed, and every operation says how it is authenticated,
// `security: []` for the public ones.
func TestOpenAPILintRules(t *testing.T) {
	var doc struct {
		Servers []struct{ URL string } `json:"servers"`
		Paths   map[string]map[string]json.RawMessage
	}
	if err := json.Unmarshal(transport.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Servers) == 0 || doc.Servers[0].URL == "" {
		t.Error("the description lists no servers (redocly: no-empty-servers)")
	}
	for path, item := range doc.Paths {
		for method, raw := range item {
			if method == "parameters" {
				continue
			}
			var op struct {
				Security *[]map[string][]string `json:"security"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			if op.Security == nil {
				t.Errorf("%s %s declares no security; a public operation says `\"security\": []` (redocly: security-defined)", method, path)
			}
		}
	}
}
