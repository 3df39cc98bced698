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
              drafts.changed(textarea);
            }
          })
        ]
      })
    });
    textarea.parentNode.insertBefore(view.dom, textarea);
    textarea.hidden = true;
    textarea.ratEditor = view;
    drafts.attach(textarea);
    return view;
  }

  // Drafts: a pipeline file's unsaved text is kept in sessionStorage (one entry per page and
  // file) on every change, so a tab switch or a file switch never loses it; the file and the
  // code tab are marked dirty, and leaving the page with unsaved text asks first.
  var drafts = (function () {
    var leaving = false;
    var QUESTION = "You have unsaved edits. Leave this page? The draft is kept in this browser tab " +
                   "until you save or discard it.";
    function key(ta) { return "rat:draft:" + location.pathname + ":" + ta.getAttribute("data-file"); }
    function read(k) {
      try { return JSON.parse(sessionStorage.getItem(k) || "null"); } catch (e) { return null; }
    }
    function write(k, value) {
      try {
        if (value === null) sessionStorage.removeItem(k); else sessionStorage.setItem(k, JSON.stringify(value));
      } catch (e) { /* storage full or disabled: the marker and the prompt still protect the edit */ }
    }
    function editors() {
      return Array.prototype.filter.call(document.querySelectorAll("textarea[data-file]"),
                                         function (ta) { return ta.ratEditor; });
    }
    function dirty(ta) { return ta.ratBaseline !== undefined && ta.value !== ta.ratBaseline; }
    function anyDirty() { return editors().some(dirty); }
    function mark() {
      var prefix = "rat:draft:" + location.pathname + ":", any = anyDirty();
      document.querySelectorAll("[data-file-link]").forEach(function (a) {
        var ta = editors().filter(function (t) { return t.getAttribute("data-file") === a.getAttribute("data-file-link"); })[0];
        var on = ta ? dirty(ta) : !!read(prefix + a.getAttribute("data-file-link"));
        a.classList.toggle("dirty", on);
        a.title = on ? "unsaved edits" : "";
        any = any || on;
      });
      var tab = document.querySelector('nav.tabs a[data-tab="code"]');
      if (tab) { tab.classList.toggle("dirty", any); tab.title = any ? "unsaved edits" : ""; }
    }
    function setDoc(ta, text) {
      var view = ta.ratEditor;
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
    }
    function note(ta, text) {
      var el = document.getElementById("draft-note");
      if (!el) return;
      el.hidden = !text;
      if (text) el.querySelector("[data-draft-text]").textContent = text;
    }
    function attach(ta) {
      if (!ta.hasAttribute("data-file")) return;
      ta.ratBaseline = ta.value;
      var saved = read(key(ta));
      if (saved && typeof saved.text === "string" && saved.text !== ta.value) {
        setDoc(ta, saved.text);
        note(ta, saved.base === ta.ratBaseline ? "unsaved draft restored"
                 : "unsaved draft restored (the saved file changed since it was written)");
      } else if (saved) {
        write(key(ta), null);
      }
      mark();
    }
    function changed(ta) {
      if (ta.ratBaseline === undefined) return;
      write(key(ta), dirty(ta) ? { text: ta.value, base: ta.ratBaseline } : null);
      if (!dirty(ta)) note(ta, "");
      mark();
    }
    function saved(ta, text) {
      ta.ratBaseline = text;
      changed(ta);
      note(ta, "");
    }
    function leave(evt) {
      var a = evt.target.closest && evt.target.closest("a[href]");
      if (!a || evt.defaultPrevented || a.target === "_blank" || a.hasAttribute("download")) return;
      if (evt.button !== 0 || evt.ctrlKey || evt.metaKey || evt.shiftKey || evt.altKey) return;
      if (a.origin !== location.origin || a.getAttribute("href").charAt(0) === "#" || !anyDirty()) return;
      // The draft stays in sessionStorage either way; the question is whether to go now.
      if (window.confirm(QUESTION)) {
        leaving = true;
      } else {
        evt.preventDefault();
        evt.stopImmediatePropagation();
      }
    }
    document.addEventListener("click", leave, true);
    window.addEventListener("beforeunload", function (evt) {
      if (leaving || !anyDirty()) return;
      evt.preventDefault();
      evt.returnValue = "";
    });
    window.addEventListener("pageshow", function () { leaving = false; });
    // A save answer with "saved" in it moves the baseline to the text that was sent. An htmx
    // request that navigates (boosted, or pushing a URL) asks first, like a link.
    document.addEventListener("htmx:beforeRequest", function (evt) {
      var form = evt.detail.elt, ta = form && form.querySelector && form.querySelector("textarea[data-file]");
      var navigates = evt.detail.boosted || (form && form.closest && form.closest("[hx-push-url=true]"));
      if (navigates && anyDirty() && !window.confirm(QUESTION)) { evt.preventDefault(); return; }
      if (ta && form.id === ta.getAttribute("data-save-form")) form.ratSent = ta.value;
    });
    document.addEventListener("htmx:afterSwap", function (evt) {
      var form = evt.detail.requestConfig && evt.detail.requestConfig.elt;
      var ta = form && form.querySelector && form.querySelector("textarea[data-file]");
      if (ta && form.ratSent !== undefined && document.querySelector("#save-status .ok")) saved(ta, form.ratSent);
    });
    document.addEventListener("submit", function (evt) {
      // A plain (non-htmx) save reloads the page: no prompt for it.
      if (evt.target.querySelector && evt.target.querySelector("textarea[data-file]")) leaving = !evt.defaultPrevented && !window.htmx;
    });
    document.addEventListener("click", function (evt) {
      var btn = evt.target.closest && evt.target.closest("[data-discard-draft]");
      var ta = btn && document.querySelector("textarea[data-file]");
      if (!ta || !ta.ratEditor) return;
      setDoc(ta, ta.ratBaseline);
      write(key(ta), null);
      note(ta, "");
      mark();
    });
    return { attach: attach, changed: changed };
  })();

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
