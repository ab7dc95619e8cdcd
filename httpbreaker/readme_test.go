package httpbreaker

import (
	"os"
	"strings"
	"testing"
)

// The README's HTTP sections show the bodies of ExampleTransport and
// ExampleMiddleware, which compile and run with the tests: this keeps them
// from drifting apart.
func TestReadmeShowsTheExamples(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ section, marker string }{
		{"## Protect every backend of an HTTP client\n", "transport"},
		{"## Shed load in a server\n", "middleware"},
	} {
		_, after, ok := strings.Cut(string(readme), tc.section)
		if !ok {
			t.Fatalf("README.md has no %q section", strings.TrimSpace(tc.section))
		}
		_, block, ok := strings.Cut(after, "```go\n")
		block, _, closed := strings.Cut(block, "```")
		if !ok || !closed {
			t.Fatalf("README section %q has no ```go block", strings.TrimSpace(tc.section))
		}
		_, body, ok := strings.Cut(string(example), "// README "+tc.marker+" begins\n")
		body, _, ended := strings.Cut(body, "\t// README "+tc.marker+" ends\n")
		if !ok || !ended {
			t.Fatalf("example_test.go has no README %s markers", tc.marker)
		}
		var lines []string
		for _, line := range strings.SplitAfter(body, "\n") {
			lines = append(lines, strings.TrimPrefix(line, "\t"))
		}
		if want := strings.Join(lines, ""); block != want {
			t.Errorf("README %s:\n%s\nexample_test.go:\n%s", tc.marker, block, want)
		}
	}
}
