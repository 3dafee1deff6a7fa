/* Indgang web chat widget: puts a "write to the municipality" button on a municipality's own site
   that opens the gateway's chat page in a panel. Usage and options: docs/widget.md.

   <script src="https://GATEWAY/widget.js" data-language="da" data-position="right" async></script>

   Styles are set on elements inside a shadow root, so the host page's CSS cannot reach them and
   a strict Content-Security-Policy (no inline <style>) does not block them.

   The conversation's id and token stay inside the frame, on the gateway's origin (the chat page
   keeps them in its sessionStorage and sends the token as a header): the frame's address
   carries neither, and the host page can read neither. */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || window.indgangWidget) return;

  var TEXTS = {{ texts | tojson }};
  var options = script.dataset;
  var origin = new URL(options.origin || script.src, window.location.href).origin;
  var chosen = Object.prototype.hasOwnProperty.call(TEXTS, options.language) ? options.language : null;
  var texts = TEXTS[chosen || "{{ default_language }}"];
  var side = options.position === "left" ? "left" : "right";
  var title = options.title || texts["widget.open"];
  var small = window.matchMedia("(max-width: 480px)");

  var host = document.createElement("div");
  host.setAttribute("data-indgang-widget", "");
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;

  var launcher = document.createElement("button");
  launcher.type = "button";
  launcher.textContent = title;
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-controls", "indgang-panel");
  style(launcher, {
    position: "fixed",
    bottom: "1rem",
    zIndex: "2147483000",
    minHeight: "48px",
    maxWidth: "calc(100vw - 2rem)",
    padding: "0.75rem 1.25rem",
    border: "2px solid #ffffff",
    borderRadius: "999px",
    background: "#1a5496",
    color: "#ffffff",
    font: "600 1rem/1.25 system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif",
    boxShadow: "0 0.25rem 1rem rgba(20, 46, 82, 0.35)",
    cursor: "pointer",
  });
  launcher.style[side] = "1rem";

  var panel = document.createElement("div");
  panel.id = "indgang-panel";
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", title);
  panel.hidden = true;
  style(panel, {
    position: "fixed",
    zIndex: "2147483001",
    overflow: "hidden",
    background: "#ffffff",
    boxShadow: "0 0.5rem 2rem rgba(11, 20, 33, 0.35)",
  });

  var frame = null;

  function style(node, values) {
    for (var name in values) node.style[name] = values[name];
  }

  function layout() {
    // A phone gets the whole screen; a larger screen a panel above the button.
    if (small.matches) {
      style(panel, { top: "0", bottom: "0", left: "0", right: "0", width: "100%", height: "100%", borderRadius: "0" });
    } else {
      style(panel, {
        top: "auto",
        bottom: "5rem",
        left: side === "left" ? "1rem" : "auto",
        right: side === "right" ? "1rem" : "auto",
        width: "min(25rem, calc(100vw - 2rem))",
        height: "min(40rem, calc(100vh - 7rem))",
        borderRadius: "0.75rem",
      });
    }
  }

  function chatUrl() {
    var query = "embed=1" + (chosen ? "&lang=" + encodeURIComponent(chosen) : "");
    return origin + "/?" + query;
  }

  function tellFrameItIsOpen() {
    frame.contentWindow.postMessage({ type: "indgang:opened" }, origin);
  }

  function open() {
    if (!frame) {
      frame = document.createElement("iframe");
      frame.src = chatUrl();
      frame.title = title;
      style(frame, { width: "100%", height: "100%", border: "0", display: "block" });
      frame.addEventListener("load", tellFrameItIsOpen);
      panel.appendChild(frame);
    } else {
      tellFrameItIsOpen();
    }
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    launcher.textContent = texts["widget.close"];
    frame.focus();
  }

  function close() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.textContent = title;
    launcher.focus();
  }

  launcher.addEventListener("click", function () {
    if (panel.hidden) open();
    else close();
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && !panel.hidden) close();
  });
  window.addEventListener("message", function (event) {
    // Only the chat page in our own frame may close the panel.
    if (frame && event.origin === origin && event.source === frame.contentWindow && event.data
        && event.data.type === "indgang:close") {
      close();
    }
  });
  if (small.addEventListener) small.addEventListener("change", layout);

  function mount() {
    layout();
    root.appendChild(launcher);
    root.appendChild(panel);
    document.body.appendChild(host);
  }

  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
  window.indgangWidget = { open: open, close: close };
})();
