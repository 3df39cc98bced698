// The CodeMirror 6 surface RAT's static/editor.js uses, bundled by scripts/vendor.sh into one IIFE
// (global `RatCM`). Keep this list minimal: every export ships to the browser.
export { EditorView, keymap, lineNumbers } from "@codemirror/view";
export { EditorState, Compartment, Prec } from "@codemirror/state";
export { basicSetup } from "codemirror";
export { HighlightStyle, syntaxHighlighting, indentUnit } from "@codemirror/language";
export { tags } from "@lezer/highlight";
export { setDiagnostics, lintGutter } from "@codemirror/lint";
export { sql, PostgreSQL, StandardSQL } from "@codemirror/lang-sql";
export { python } from "@codemirror/lang-python";
export { yaml } from "@codemirror/lang-yaml";
