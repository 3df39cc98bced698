// RAT editor glue: turns <textarea data-editor="sql|python|yaml|text"> into CodeMirror 6
// (window.RatCM, built by scripts/vendor.sh). The textarea stays the form field and is kept in
// sync, so forms post it with or without JavaScript. No user data is ever evaluated.
(function () {
  "use strict";
  var CM = window.RatCM;
  if (!CM) return;

  var theme = CM.EditorView.theme({
    "&": { backgroundColor: "#07090b", color: "#e6e9ee", border: "1px solid #2a313b", fontSize: "13px" },
    "&.cm-focused": { outline: "1px solid #b98bff" },
    ".cm-content": { fontFamily: "var(--mono)", caretColor: "#39ff88" },
    ".cm-gutters": { backgroundColor: "#0b0d10", color: "#5d6773", borderRight: "1px solid #2a313b" },
    ".cm-activeLine": { backgroundColor: "#12161b" },
    ".cm-activeLineGutter": { backgroundColor: "#12161b", color: "#39ff88" },
    ".cm-selectionBackground, &.cm-focused .cm-selectionBackground, ::selection": { backgroundColor: "#3b2a5e !important" },
    ".cm-cursor": { borderLeftColor: "#39ff88" },
    ".cm-tooltip": { backgroundColor: "#181d24", border: "1px solid #2a313b", color: "#e6e9ee" },
    ".cm-tooltip-autocomplete ul li[aria-selected]": { backgroundColor: "#6b46c1", color: "#fff" },
    ".cm-panels": { backgroundColor: "#12161b", color: "#e6e9ee" },
    ".cm-searchMatch": { backgroundColor: "#1f8f5055" }
  }, { dark: true });

  var t = CM.tags;
  var highlight = CM.HighlightStyle.define([
    { tag: [t.keyword, t.operatorKeyword, t.modifier], color: "#b98bff", fontWeight: "600" },
    { tag: [t.string, t.special(t.string)], color: "#39ff88" },
    { tag: [t.number, t.bool, t.null], color: "#ffc857" },
    { tag: [t.comment, t.lineComment, t.blockComment], color: "#6f7a87", fontStyle: "italic" },
    { tag: [t.function(t.variableName), t.standard(t.name)], color: "#6cc4ff" },
    { tag: [t.typeName, t.className], color: "#ff9ef0" },
    { tag: [t.propertyName, t.attributeName], color: "#8be9fd" },
    { tag: [t.punctuation, t.bracket, t.operator], color: "#c9d1db" },
    { tag: t.invalid, color: "#ff5c7a" }
  ]);

  function language(kind, schema) {
    if (kind === "python") return CM.python();
    if (kind === "yaml") return CM.yaml();
    if (kind === "sql") return CM.sql({ dialect: CM.PostgreSQL, schema: schema || undefined, upperCaseKeywords: true });
    return [];
  }

  function parseSchema(el) {
    // { "silver.orders": [["id", "BIGINT"], ...] } → { "silver.orders": ["id", ...] }
    var raw = el.getAttribute("data-schema");
    if (!raw) return null;
    try {
      var data = JSON.parse(raw), out = {};
      Object.keys(data).forEach(function (k) { out[k] = data[k].map(function (c) { return c[0]; }); });
      return out;
    } catch (e) { return null; }
  }

  function submit(id) {
    var form = id && document.getElementById(id);
    if (form) form.requestSubmit();
    return !!form;
  }

  function create(textarea) {
    var kind = textarea.getAttribute("data-editor");
    var keys = CM.keymap.of([
      { key: "Mod-s", preventDefault: true, run: function () { return submit(textarea.getAttribute("data-save-form")); } },
      { key: "Mod-Enter", preventDefault: true, run: function () { return submit(textarea.getAttribute("data-run-form")); } }
    ]);
    var view = new CM.EditorView({
      parent: textarea.parentNode,
      state: CM.EditorState.create({
        doc: textarea.value,
        extensions: [
          CM.Prec.highest(keys), CM.basicSetup, theme, CM.syntaxHighlighting(highlight),
          language(kind, parseSchema(textarea)), CM.lintGutter(),
          CM.EditorView.updateListener.of(function (u) {
            if (u.docChanged) {
              textarea.value = u.state.doc.toString();
              textarea.dispatchEvent(new Event("input", { bubbles: true }));
            }
          })
        ]
      })
    });
    textarea.parentNode.insertBefore(view.dom, textarea);
    textarea.hidden = true;
    textarea.ratEditor = view;
    return view;
  }

  // Validation messages rendered next to the editor (<li data-line data-severity>) become
  // diagnostics at their line; the text itself is only ever read with textContent.
  function diagnostics(root) {
    root.querySelectorAll("[data-diagnostics-for]").forEach(function (list) {
      var ta = document.getElementById(list.getAttribute("data-diagnostics-for"));
      var view = ta && ta.ratEditor;
      if (!view) return;
      var doc = view.state.doc, found = [], file = ta.getAttribute("data-file");
      list.querySelectorAll("[data-line]").forEach(function (item) {
        if (file && item.getAttribute("data-path") !== file) return;
        var n = parseInt(item.getAttribute("data-line"), 10);
        if (!(n >= 1 && n <= doc.lines)) return;
        var line = doc.line(n);
        found.push({ from: line.from, to: line.to, message: item.textContent,
                     severity: item.getAttribute("data-severity") === "warning" ? "warning" : "error" });
      });
      view.dispatch(CM.setDiagnostics(view.state, found));
    });
  }

  function init(root) {
    root.querySelectorAll("textarea[data-editor]").forEach(function (ta) {
      if (!ta.ratEditor) create(ta);
    });
    diagnostics(root);
  }

  // Schema tree: clicking a table or column inserts its name at the cursor.
  document.addEventListener("click", function (evt) {
    var btn = evt.target.closest && evt.target.closest("[data-insert]");
    if (!btn) return;
    var ta = document.querySelector("textarea[data-editor]");
    var view = ta && ta.ratEditor, text = btn.getAttribute("data-insert");
    if (!view) return;
    evt.preventDefault();
    view.dispatch(view.state.replaceSelection(text));
    view.focus();
  });

  if (window.htmx) window.htmx.onLoad(init);
  else init(document);
})();
