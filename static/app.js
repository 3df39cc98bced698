// RAT's small client glue: error toasts for failed htmx requests. No user data is ever evaluated.
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
})();
