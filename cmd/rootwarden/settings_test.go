package main

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rootwarden/rootwarden/internal/config"
)

// The flags on the command line are the settings table's (internal/config): each
// flag bound to a variable has the table's name for it and is on exactly the commands
// the table (and so docs/configuration.md) lists.
func TestFlagsAreTheSettingsTables(t *testing.T) {
	root := newRoot(io.Discard, io.Discard)
	on := map[string][]string{} // variable → commands
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
			env := f.Annotations[envAnnotation]
			if len(env) != 1 {
				return
			}
			s, ok := config.Lookup(env[0])
			if !ok || s.Flag != f.Name {
				t.Errorf("%s --%s binds %s, whose flag in the settings table is %q", c.CommandPath(), f.Name, env[0], s.Flag)
			}
			on[env[0]] = append(on[env[0]], strings.TrimPrefix(c.CommandPath(), "rootwarden "))
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if f := root.PersistentFlags().Lookup("config"); f == nil || !slices.Equal(f.Annotations[envAnnotation], []string{"ROOTWARDEN_CONFIG"}) {
		t.Error("--config is not the persistent flag of ROOTWARDEN_CONFIG")
	}
	for _, s := range config.Settings() {
		if s.Flag == "" || s.Name == "ROOTWARDEN_CONFIG" {
			if len(on[s.Name]) > 0 {
				t.Errorf("%s has flags on %v but none in the settings table", s.Name, on[s.Name])
			}
			continue
		}
		want := strings.Split(s.Commands, ", ")
		got := on[s.Name]
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("--%s (%s) is on %q; the settings table says %q", s.Flag, s.Name, got, want)
		}
	}
}
