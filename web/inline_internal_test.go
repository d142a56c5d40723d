package web

import (
	"strings"
	"testing"
)

// TestInlineWatcherRefuses: the widget takes the SDK's watcher only as
// inlineWatcher can make it part of a classic script; anything else fails
// the build's tests (and Handler panics), not a visitor's page.
func TestInlineWatcherRefuses(t *testing.T) {
	widget := "(function () {\n" + includeLine + "\n})();\n"
	good := "// comment\nexport function watchWidget(options, onStatus) {\n  return 1;\n}\n"
	out, err := inlineWatcher([]byte(widget), []byte(good))
	if err != nil {
		t.Fatalf("inlineWatcher: %v", err)
	}
	if want := "(function () {\nfunction watchWidget(options, onStatus) {\n  return 1;\n}\n})();\n"; string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	for _, tc := range []struct{ name, widget, watch, wantErr string }{
		{"no include line", "(function () {})();\n", good, "must have the line"},
		{"two include lines", widget + includeLine + "\n", good, "must have the line"},
		{"an import", widget, "import { x } from './x.js';\n" + good, "must import nothing"},
		{"another export", widget, good + "export const y = 1;\n", "must export watchWidget alone"},
		{"no export", widget, "function watchWidget() {}\n", "has 0"},
	} {
		_, err := inlineWatcher([]byte(tc.widget), []byte(tc.watch))
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: got error %v, want one saying %q", tc.name, err, tc.wantErr)
		}
	}
}
