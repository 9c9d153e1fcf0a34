package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// repoRoot is the repository, seen from this package.
const repoRoot = "../.."

// documents are the Markdown files a reader of the repository reads: the README, docs/ (with the generated
// CLI reference), every example's README and every chart's README.
func documents(t *testing.T) []string {
	t.Helper()
	var docs []string
	for _, pattern := range []string{"README.md", "docs/*.md", "docs/cli/*.md", "examples/*/README.md", "examples/*/*/README.md", "charts/*/README.md"} {
		m, err := filepath.Glob(filepath.Join(repoRoot, pattern))
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, m...)
	}
	if len(docs) < 5 {
		t.Fatalf("found only %d documents", len(docs))
	}
	return docs
}

var (
	fence       = regexp.MustCompile("(?ms)^```.*?^```[^\\n]*$")
	inlineCode  = regexp.MustCompile("`[^`\\n]*`")
	mdLink      = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	mdHeading   = regexp.MustCompile(`(?m)^#{1,6}\s+(.+?)\s*#*\s*$`)
	trackerRefs = regexp.MustCompile(`(?i)\bissues?\s+#?\d+|\bthe\s+issue'?s\b`)
)

// anchors returns the #fragments GitHub gives the headings of a Markdown document.
func anchors(md string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, m := range mdHeading.FindAllStringSubmatch(fence.ReplaceAllString(md, ""), -1) {
		slug := slugify(m[1])
		if n := seen[slug]; n > 0 {
			out[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

// slugify is GitHub's heading anchor: lower case, letters, digits, '-' and '_' kept, spaces made '-',
// everything else dropped.
func slugify(heading string) string {
	heading = mdLink.ReplaceAllStringFunc(heading, func(l string) string { return "]" }) // [text](url) → text
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// docProblems lists what is wrong with one document: links to files that do not exist or lie outside the
// repository, #anchors no heading has, and references to an issue tracker the reader cannot see. read
// returns a repository file's content (ok false when there is none).
func docProblems(path, md string, read func(rel string) (string, bool)) []string {
	var problems []string
	prose := inlineCode.ReplaceAllString(fence.ReplaceAllString(md, ""), "")
	for _, m := range trackerRefs.FindAllString(prose, -1) {
		problems = append(problems, fmt.Sprintf("%s: %q refers to an issue tracker the reader cannot see: say what it is instead", path, m))
	}
	dir := filepath.Dir(path)
	for _, m := range mdLink.FindAllStringSubmatch(prose, -1) {
		target := m[1]
		if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
			problems = append(problems, fmt.Sprintf("%s: link %q leads outside the repository: name the page in words, the docs stand alone", path, target))
			continue
		}
		file, frag, _ := strings.Cut(target, "#")
		rel := path
		if file != "" {
			rel = filepath.Clean(filepath.Join(dir, file))
		}
		if rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
			problems = append(problems, fmt.Sprintf("%s: link %q leads outside the repository", path, target))
			continue
		}
		content, ok := read(rel)
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: link %q leads nowhere: %s does not exist", path, target, rel))
			continue
		}
		if frag != "" && strings.HasSuffix(rel, ".md") && !anchors(content)[frag] {
			problems = append(problems, fmt.Sprintf("%s: link %q: %s has no heading #%s", path, target, rel, frag))
		}
	}
	return problems
}

// readRepo reads a file or reports a directory of the repository by its path relative to the root.
func readRepo(rel string) (string, bool) {
	p := filepath.Join(repoRoot, rel)
	fi, err := os.Stat(p)
	if err != nil {
		return "", false
	}
	if fi.IsDir() {
		return "", true
	}
	b, err := os.ReadFile(p)
	return string(b), err == nil
}

// TestDocsLinkOnlyToWhatExists: every link of the README, docs/ and the examples' READMEs leads to
// a file of the repository (and its #anchor to a heading there), none leads outside it, and none of them
// speaks of an issue tracker the reader cannot see.
func TestDocsLinkOnlyToWhatExists(t *testing.T) {
	links := 0
	for _, doc := range documents(t) {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(repoRoot, doc)
		links += len(mdLink.FindAllString(string(data), -1))
		for _, p := range docProblems(rel, string(data), readRepo) {
			t.Error(p)
		}
	}
	if links < 20 {
		t.Fatalf("found only %d links: the pattern no longer matches the docs", links)
	}
}

// TestDocProblemsCatchesWhatItShould: the check itself finds a dangling file link, a dangling anchor, a
// link out of the repository (a relative one or a web page) and an issue reference, and passes good links and code.
func TestDocProblemsCatchesWhatItShould(t *testing.T) {
	files := map[string]string{
		"README.md":       "# Top\n\n## Node mode: one bridge\n\n### `credential-process` — drop-in\n",
		"docs/a.md":       "# A page\n",
		"examples/spire":  "",
		"docs/guide.md":   "",
		"docs/benches.md": "",
	}
	read := func(rel string) (string, bool) { s, ok := files[rel]; return s, ok }
	doc := strings.Join([]string{
		"[good](../README.md#node-mode-one-bridge) [good](a.md) [dir](../examples/spire) [self](#a-page)",
		"[dash](../README.md#credential-process--drop-in) [web](https://spiffe.io/docs)",
		"[gone](missing.md) [anchor](../README.md#nowhere) [out](../../shared/design.md)",
		"as issue 15 said; see the\nissue's scenario",
		"`issue 99 in code` and", "```", "[in a block](nowhere.md) issue 7", "```",
	}, "\n")
	got := strings.Join(docProblems("docs/a.md", doc, read), "\n")
	for _, want := range []string{
		`link "missing.md" leads nowhere: docs/missing.md does not exist`,
		`link "../README.md#nowhere": README.md has no heading #nowhere`,
		`link "../../shared/design.md" leads outside the repository`,
		`link "https://spiffe.io/docs" leads outside the repository`,
		`"issue 15" refers to an issue tracker`,
		`"the\nissue's" refers to an issue tracker`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\n") + 1; n != 6 {
		t.Errorf("%d problems, want exactly the 6 planted:\n%s", n, got)
	}
}
