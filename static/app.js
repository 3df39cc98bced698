// RAT's small client glue: toasts, dialogs, confirmations, live run logs (SSE), upload progress.
// User data is only ever written with textContent; nothing from the server is evaluated.
(function () {
  "use strict";
  function toast(text, isError) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var el = document.createElement("div");
    el.className = "toast" + (isError ? " toast-error" : "");
    el.setAttribute("role", isError ? "alert" : "status");
    el.textContent = text;
    box.appendChild(el);
    setTimeout(function () { el.remove(); }, 6000);
  }
  document.addEventListener("htmx:responseError", function (evt) {
    var xhr = evt.detail.xhr, text = "Request failed (" + xhr.status + ")";
    try {
      var body = JSON.parse(xhr.responseText);
      if (body && body.error && body.error.message) text = body.error.message;
    } catch (e) {
      var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var msg = doc.querySelector(".toast, .error-text");
      if (msg) text = msg.textContent;
    }
    toast(text, true);
  });
  document.addEventListener("htmx:sendError", function () { toast("Server unreachable", true); });
  document.body.addEventListener("rat:toast", function (evt) { toast(evt.detail.value || "Done", false); });
  window.ratToast = toast;

  // <button data-open-dialog="id"> opens <dialog id>; the button is a link without JavaScript.
  document.addEventListener("click", function (evt) {
    var opener = evt.target.closest && evt.target.closest("[data-open-dialog]");
    if (!opener) return;
    var dialog = document.getElementById(opener.getAttribute("data-open-dialog"));
    if (!dialog || !dialog.showModal) return;
    evt.preventDefault();
    if (dialog.open) dialog.close();
    dialog.showModal();
    // The field in error, else the one marked autofocus (Name), else the first field.
    var first = dialog.querySelector("[aria-invalid=true]") || dialog.querySelector("[autofocus]") ||
                dialog.querySelector("input:not([type=hidden]), select, textarea");
    if (first) first.focus();
  });
  document.addEventListener("click", function (evt) {
    var closer = evt.target.closest && evt.target.closest("[data-close-dialog]");
    if (closer) closer.closest("dialog").close();
  });
  // An error answer swapped into a closed dialog (e.g. "Publish & run" failing validation)
  // opens that dialog, so the message is seen next to the form that caused it.
  document.addEventListener("htmx:afterSwap", function (evt) {
    var target = evt.detail.target, el = (target.id && document.getElementById(target.id)) || target;
    var dialog = el.closest && el.closest("dialog");
    if (dialog && !dialog.open && evt.detail.xhr.status >= 400) dialog.showModal();
  });
  // <form data-confirm="question"> asks before a destructive post (htmx or plain).
  document.addEventListener("submit", function (evt) {
    var q = evt.target.getAttribute && evt.target.getAttribute("data-confirm");
    if (q && !window.confirm(q)) { evt.preventDefault(); evt.stopImmediatePropagation(); }
  }, true);

  // <button data-confirm-click="question"> asks before its own submit (one button of a form).
  document.addEventListener("click", function (evt) {
    var btn = evt.target.closest && evt.target.closest("[data-confirm-click]");
    if (btn && !window.confirm(btn.getAttribute("data-confirm-click"))) evt.preventDefault();
  }, true);
  // <button data-copy="id"> copies the value (or text) of element #id to the clipboard.
  document.addEventListener("click", function (evt) {
    var btn = evt.target.closest && evt.target.closest("[data-copy]");
    var el = btn && document.getElementById(btn.getAttribute("data-copy"));
    if (!el) return;
    var text = "value" in el ? el.value : el.textContent;
    function copied() { toast("Copied", false); }
    function fallback() {
      var area = document.createElement("textarea");
      area.value = text;
      document.body.appendChild(area);
      area.select();
      document.execCommand("copy");
      area.remove();
      copied();
    }
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(copied, fallback);
    else fallback();
  });

  // Live logs: <pre data-stream="/api/v1/runs/{id}/logs" data-after="seq"> follows the run over
  // SSE, reconnecting with backoff from the last record seen, until the run's status event.
  function logLine(rec) {
    var line = document.createElement("span"), ts = document.createElement("span"),
        lvl = document.createElement("span");
    line.className = "log-line log-" + String(rec.level).replace(/[^a-z]/g, "");
    ts.className = "log-ts";
    ts.textContent = String(rec.timestamp).slice(11, 23);
    lvl.className = "log-level";
    lvl.textContent = rec.level;
    line.append(ts, " ", lvl, " ", String(rec.message), "\n");
    return line;
  }
  function stream(pre) {
    var after = parseInt(pre.getAttribute("data-after"), 10) || 0, delay = 1000;
    var state = document.querySelector('[data-log-state="' + pre.id + '"]');
    var follow = document.querySelector('[data-log-follow="' + pre.id + '"]');
    function say(text) { if (state) state.textContent = text; }
    function open() {
      if (!document.body.contains(pre)) return;
      var es = new EventSource(pre.getAttribute("data-stream") + "?after_seq=" + after);
      es.addEventListener("open", function () { say("live"); });
      es.addEventListener("log", function (e) {
        var rec = JSON.parse(e.data);
        if (rec.seq <= after) return;
        after = rec.seq;
        delay = 1000;
        pre.appendChild(logLine(rec));
        if (!follow || follow.checked) pre.scrollTop = pre.scrollHeight;
      });
      es.addEventListener("status", function (e) {
        es.close();
        say("finished: " + JSON.parse(e.data).status);
      });
      es.addEventListener("error", function () {
        es.close();
        say("reconnecting in " + Math.round(delay / 1000) + " s…");
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 30000);
      });
    }
    open();
  }
  function initLogs(root) {
    root.querySelectorAll("pre[data-stream]").forEach(function (pre) {
      if (pre.ratStreaming) return;
      pre.ratStreaming = true;
      pre.scrollTop = pre.scrollHeight;
      stream(pre);
    });
  }
  document.addEventListener("change", function (evt) {
    var id = evt.target.getAttribute && evt.target.getAttribute("data-log-level");
    var pre = id && document.getElementById(id);
    if (pre) pre.setAttribute("data-min-level", evt.target.value);
  });

  // Uploads: <form data-upload-url="/api/v1/…/files"> sends each dropped or chosen file with
  // XHR (so the progress bar moves), then fires `rat:files-changed` so file lists refresh.
  // Without JavaScript the same form posts multipart to its action.
  function upload(form, files) {
    var bar = form.querySelector("progress"), out = form.querySelector("[data-upload-status]");
    var token = (document.body.getAttribute("hx-headers") || "").match(/"x-csrftoken": "([^"]*)"/);
    var queue = Array.prototype.slice.call(files), done = 0;
    function say(text, isError) {
      if (!out) return;
      out.textContent = text;
      out.className = isError ? "field-error" : "muted small";
    }
    function next() {
      var file = queue.shift();
      if (!file) {
        say(done + " file" + (done === 1 ? "" : "s") + " uploaded", false);
        document.body.dispatchEvent(new CustomEvent("rat:files-changed", { bubbles: true }));
        return;
      }
      var xhr = new XMLHttpRequest(), data = new FormData();
      data.append("file", file, file.name);
      xhr.open("POST", form.getAttribute("data-upload-url"));
      if (token) xhr.setRequestHeader("x-csrftoken", token[1]);
      xhr.upload.addEventListener("progress", function (e) {
        if (bar && e.lengthComputable) { bar.hidden = false; bar.max = e.total; bar.value = e.loaded; }
        say("uploading " + file.name + " … " + Math.round(100 * e.loaded / (e.total || 1)) + " %", false);
      });
      xhr.addEventListener("load", function () {
        if (bar) bar.hidden = true;
        if (xhr.status >= 200 && xhr.status < 300) { done += 1; next(); return; }
        var msg = "upload failed (" + xhr.status + ")";
        try { msg = file.name + ": " + JSON.parse(xhr.responseText).error.message; } catch (e) { /* keep */ }
        say(msg, true);
        document.body.dispatchEvent(new CustomEvent("rat:files-changed", { bubbles: true }));
      });
      xhr.addEventListener("error", function () { say("upload failed: server unreachable", true); });
      xhr.send(data);
    }
    next();
  }
  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    if (!form.getAttribute || !form.getAttribute("data-upload-url")) return;
    var input = form.querySelector("input[type=file]");
    evt.preventDefault();
    if (input && input.files.length) upload(form, input.files);
  });
  document.addEventListener("change", function (evt) {
    var form = evt.target.form;
    if (evt.target.type === "file" && form && form.getAttribute("data-upload-url") && evt.target.files.length) {
      upload(form, evt.target.files);
    }
  });
  ["dragover", "dragleave", "drop"].forEach(function (name) {
    document.addEventListener(name, function (evt) {
      var zone = evt.target.closest && evt.target.closest("[data-dropzone]");
      if (!zone) return;
      evt.preventDefault();
      zone.classList.toggle("dragging", name === "dragover");
      if (name === "drop" && evt.dataTransfer.files.length) upload(zone.closest("form"), evt.dataTransfer.files);
    });
  });

  // <button data-download formaction=…> in an htmx form: a real form post (the browser saves the
  // attachment) instead of an htmx request, which would swallow the file.
  document.addEventListener("click", function (evt) {
    var btn = evt.target.closest && evt.target.closest("button[data-download]");
    if (!btn || !btn.form) return;
    evt.preventDefault();
    var form = btn.form, action = form.getAttribute("action"), field = document.createElement("input");
    field.type = "hidden";
    field.name = btn.name;
    field.value = btn.value;
    form.appendChild(field);
    form.setAttribute("action", btn.getAttribute("formaction"));
    HTMLFormElement.prototype.submit.call(form);
    form.setAttribute("action", action);
    field.remove();
  }, true);

  if (window.htmx) window.htmx.onLoad(initLogs);
  else initLogs(document);
})();
