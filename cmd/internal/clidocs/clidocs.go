// Package clidocs generates the CLI reference — Markdown in docs/cli and man pages in docs/man — from the
// cobra command trees of the binaries, with cobra's own generator, and checks that the committed files
// are current. Only tests import it (each binary's TestCLIReferenceIsCurrent), so that no binary links
// the generator.
//
// Regenerate after changing a command, a flag or a help text:
//
//	go generate ./cmd/...
package clidocs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/cli"
)

// Directories of the generated reference, relative to the repository root.
const (
	MarkdownDir = "docs/cli"
	ManDir      = "docs/man"
)

// manDate is the date in the man pages' footer: fixed, so that the output does not depend on the day it
// was generated.
var manDate = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

// Generate writes root's Markdown and man pages into mdDir and manDir. The tree is prepared as it is
// at run time (the help and completion commands added) and without cobra's dated "Auto generated" tag.
func Generate(root *cobra.Command, mdDir, manDir string) error {
	cli.Prepare(root)
	disableAutoGenTag(root)
	for _, d := range []string{mdDir, manDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("clidocs: %w", err)
		}
	}
	if err := doc.GenMarkdownTree(root, mdDir); err != nil {
		return fmt.Errorf("clidocs: markdown: %w", err)
	}
	header := &doc.GenManHeader{Section: "1", Source: "spiffe-aws-bridge", Manual: "spiffe-aws-bridge manual", Date: &manDate}
	if err := doc.GenManTree(root, header, manDir); err != nil {
		return fmt.Errorf("clidocs: man: %w", err)
	}
	return nil
}

func disableAutoGenTag(c *cobra.Command) {
	c.DisableAutoGenTag = true
	for _, sub := range c.Commands() {
		disableAutoGenTag(sub)
	}
}

// owned lists the files of dir that belong to the command named name: NAME.md and NAME_*.md, or
// NAME.1 and NAME-*.1, less those of another binary whose name extends NAME with a dash (the man pages of
// spiffe-aws-bridge-k8s are not spiffe-aws-bridge's "k8s" subcommand). The binaries are the root pages of
// MarkdownDir beside dir.
func owned(dir, name string) ([]string, error) {
	roots, err := filepath.Glob(filepath.Join(filepath.Dir(dir), filepath.Base(MarkdownDir), name+"-*.md"))
	if err != nil {
		return nil, err
	}
	var others []string
	for _, r := range roots {
		if b := strings.TrimSuffix(filepath.Base(r), ".md"); !strings.Contains(b, "_") {
			others = append(others, b)
		}
	}
	var out []string
	for _, pattern := range []string{name + ".md", name + "_*.md", name + ".1", name + "-*.1"} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return nil, err
		}
		for _, f := range m {
			b := filepath.Base(f)
			if !slices.ContainsFunc(others, func(o string) bool { return b == o+".1" || strings.HasPrefix(b, o+"-") }) {
				out = append(out, b)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// Check generates root's reference into a temporary directory and compares it with the files under
// repoRoot: it returns one line per file that is missing, stale or no longer generated. With update, it
// writes the generated files into repoRoot instead (removing the ones no longer generated).
func Check(root *cobra.Command, repoRoot string, update bool) ([]string, error) {
	tmp, err := os.MkdirTemp("", "clidocs")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := Generate(root, filepath.Join(tmp, MarkdownDir), filepath.Join(tmp, ManDir)); err != nil {
		return nil, err
	}
	var problems []string
	for _, dir := range []string{MarkdownDir, ManDir} {
		want, err := owned(filepath.Join(tmp, dir), root.Name())
		if err != nil {
			return nil, err
		}
		have, err := owned(filepath.Join(repoRoot, dir), root.Name())
		if err != nil {
			return nil, err
		}
		if update {
			if err := os.MkdirAll(filepath.Join(repoRoot, dir), 0o755); err != nil {
				return nil, err
			}
		}
		for _, f := range have {
			if !slices.Contains(want, f) {
				if update {
					if err := os.Remove(filepath.Join(repoRoot, dir, f)); err != nil {
						return nil, err
					}
					continue
				}
				problems = append(problems, fmt.Sprintf("%s/%s is no longer generated", dir, f))
			}
		}
		for _, f := range want {
			gen, err := os.ReadFile(filepath.Join(tmp, dir, f))
			if err != nil {
				return nil, err
			}
			cur, err := os.ReadFile(filepath.Join(repoRoot, dir, f))
			if bytes.Equal(gen, cur) && err == nil {
				continue
			}
			if update {
				if err := os.WriteFile(filepath.Join(repoRoot, dir, f), gen, 0o644); err != nil {
					return nil, err
				}
				continue
			}
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s/%s is missing", dir, f))
			} else {
				problems = append(problems, fmt.Sprintf("%s/%s is stale", dir, f))
			}
		}
	}
	if len(problems) > 0 {
		problems = append(problems, "regenerate with: go generate ./cmd/...")
	}
	return problems, nil
}
