// The staff console's only script: live inbox and transcript (Server-Sent Events), and canned
// replies that fill the reply box. Every button also works without it.
"use strict";

function follow(element, eventName, onData) {
  const source = new EventSource(element.dataset.events);
  source.addEventListener(eventName, (event) => onData(event.data));
  return source;
}

document.addEventListener("DOMContentLoaded", () => {
  const inbox = document.getElementById("inbox");
  if (inbox) {
    // The server renders the lists (escaped by its templates); the page swaps them in whole.
    follow(inbox, "inbox", (html) => { inbox.innerHTML = html; });
  }

  const transcript = document.getElementById("transcript");
  if (transcript) {
    follow(transcript, "message", (html) => {
      const holder = document.createElement("template");
      holder.innerHTML = html.trim();
      const item = holder.content.firstElementChild;
      if (item && !document.getElementById(item.id)) {
        transcript.appendChild(item);
        item.scrollIntoView({ block: "nearest" });
      }
    });
  }

  const reply = document.getElementById("reply");
  document.querySelectorAll("[data-canned]").forEach((button) => {
    button.addEventListener("click", () => {
      reply.value = button.dataset.canned;
      reply.focus();
    });
  });
});
