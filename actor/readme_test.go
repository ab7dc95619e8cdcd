package actor

import (
	"os"
	"strings"
	"testing"
)

// The README's quick start is the body of Example, which compiles and is
// vetted with the tests: this keeps the two from drifting apart.
func TestReadmeQuickStartIsTheExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "## Quick start\n")
	if !ok {
		t.Fatal(`README.md has no "## Quick start" section`)
	}
	_, block, ok := strings.Cut(after, "```go\n")
	block, _, closed := strings.Cut(block, "```")
	if !ok || !closed {
		t.Fatal("the README's quick start has no ```go block")
	}

	example, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, body, ok := strings.Cut(string(example), "// README quick start begins\n")
	body, _, ended := strings.Cut(body, "\t// README quick start ends\n")
	if !ok || !ended {
		t.Fatal("example_test.go has no README quick start markers")
	}
	var lines []string
	for _, line := range strings.SplitAfter(body, "\n") {
		lines = append(lines, strings.TrimPrefix(line, "\t"))
	}
	if want := strings.Join(lines, ""); block != want {
		t.Errorf("README quick start:\n%s\nExample in example_test.go:\n%s", block, want)
	}
}
