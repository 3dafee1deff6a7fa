/* The citizen web chat. Plain JavaScript, no build step. Every text comes from webchat.yaml through
   the page's config (#indgang-config); nothing here is shown to a citizen as written.

   The transcript is the one source of truth: after sending, the page reads the new messages from
   it (GET .../messages?after=cursor) and follows it live (Server-Sent Events, or polling where
   those fail). Messages are placed by their transcript id, so a reply that arrives by both
   paths is shown once and in order.

   A conversation is its citizen's alone: the answer to its first message carries a token, and
   every later request sends it in X-Conversation-Token. The id and the token live only in this
   tab (sessionStorage) and never in a URL, so they end up in no log, history or Referer. */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("indgang-config").textContent);
  const texts = config.texts;
  const STORAGE = {
    conversation: "indgang.conversation",
    token: "indgang.token",
    language: "indgang.language",
    followup: "indgang.followup",
  };
  const CONVERSATION_ID = /^[A-Za-z0-9_-]{16,128}$/; // as the gateway checks it
  const TOKEN = /^[A-Za-z0-9_-]{22,256}$/;
  const TOKEN_HEADER = "X-Conversation-Token";
  const FOLLOWUP_HEADER = "X-Followup-Key";
  const POLL_MS = 4000;
  const RETRY_MS = 3000; // how soon a dropped live stream is opened again
  const ANNOUNCE_KEEP_MS = 10000;
  const API = "/api/v1";

  function keeper(name) {
    // Storage may be blocked (private mode, a third-party frame): the page still works.
    return {
      get(key) {
        try {
          return window[name].getItem(key);
        } catch (error) {
          return null;
        }
      },
      set(key, value) {
        try {
          window[name].setItem(key, value);
        } catch (error) {
          /* as above */
        }
      },
      remove(key) {
        try {
          window[name].removeItem(key);
        } catch (error) {
          /* as above */
        }
      },
    };
  }
  // The language is remembered across visits; the conversation and its token only in this tab,
  // so a shared computer keeps no key to it once the tab is closed.
  const store = keeper("localStorage");
  const tab = keeper("sessionStorage");
  store.remove(STORAGE.conversation); // an id kept by an older version of this page, without a token

  // A language chosen earlier wins over the default, unless the address names one.
  const params = new URLSearchParams(window.location.search);
  const remembered = store.get(STORAGE.language);
  if (!params.has("lang") && remembered && remembered !== config.language) {
    params.set("lang", remembered);
    window.location.replace("?" + params.toString());
    return;
  }

  const $ = (id) => document.getElementById(id);
  const ui = {
    messages: $("messages"),
    typing: $("typing"),
    form: $("composer"),
    input: $("message"),
    send: document.querySelector("#composer .send"),
    status: $("composer-status"),
    erase: $("erase"),
    exportButton: $("export"),
    dialog: $("erase-dialog"),
    eraseConfirm: $("erase-confirm"),
    eraseCancel: $("erase-cancel"),
    polite: $("announce-polite"),
    urgent: $("announce-crisis"),
  };
  const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  const clock = new Intl.DateTimeFormat(config.language === "en" ? "en-GB" : "da-DK", {
    hour: "2-digit",
    minute: "2-digit",
  });

  const storedId = tab.get(STORAGE.conversation);
  const storedToken = tab.get(STORAGE.token);
  const resumable = Boolean(
    storedId && CONVERSATION_ID.test(storedId) && storedToken && TOKEN.test(storedToken)
  );
  const state = {
    id: resumable ? storedId : null,
    token: resumable ? storedToken : null,
    opening: null, // the first message of a new conversation on its way: its answer brings the token
    cursor: null,
    seen: new Set(),
    sending: 0, // messages on their way; the citizen may write on meanwhile
    stream: null, // the AbortController of the live stream
    poll: null,
    titles: new Map(), // button payload -> title, to show a pressed button as the citizen saw it
    crisisLines: null,
  };
  let uid = 0;

  // --- texts and elements -------------------------------------------------------------------

  function T(key, values) {
    const text = texts[key];
    if (typeof text !== "string") return key;
    return text.replace(/\{(\w+)\}/g, (whole, name) =>
      values && name in values ? String(values[name]) : whole
    );
  }

  function el(tag, attributes, children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name === "class") node.className = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children || []) {
      if (child !== null && child !== undefined && child !== "") node.append(child);
    }
    return node;
  }

  function safeHttpUrl(value) {
    try {
      const url = new URL(value);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (error) {
      return null;
    }
  }

  function telUri(number) {
    const digits = String(number).replace(/[^\d+]/g, "");
    if (!digits) return null;
    return "tel:" + (/^\d{8}$/.test(digits) ? "+45" + digits : digits); // Danish numbers have 8 digits
  }

  function externalLink(href, label, className) {
    return el("a", { href: href, class: className, target: "_blank", rel: "noopener" }, [
      label,
      el("span", { class: "visually-hidden", text: " " + T("offers.new_window") }),
    ]);
  }

  function paragraphs(text) {
    return String(text)
      .split(/\n{2,}/)
      .map((block) => {
        const p = el("p");
        block.split("\n").forEach((line, index) => {
          if (index) p.append(el("br"));
          p.append(line);
        });
        return p;
      });
  }

  // --- rendering messages -------------------------------------------------------------------

  function senderLine(from, at) {
    const when = at ? new Date(at) : null;
    return el("p", { class: "msg-sender" }, [
      T("sender." + from),
      when && !isNaN(when) ? el("time", { datetime: at, text: clock.format(when) }) : null,
    ]);
  }

  function renderMessage(message) {
    const li = el("li", { class: "msg msg-" + message.from, "data-id": message.id });
    li.append(senderLine(message.from, message.at));
    if (message.crisis) {
      li.append(crisisBanner(message.text));
    } else if (message.from === "user") {
      const shown = state.titles.get(message.text) || message.text;
      li.append(el("div", { class: "msg-body" }, [el("p", { text: shown })]));
    } else if (message.text) {
      li.append(el("div", { class: "msg-body" }, paragraphs(message.text)));
    }
    if (message.offers && message.offers.length) li.append(offerList(message.offers));
    if (message.buttons && message.buttons.length) li.append(choiceGroup(message.buttons));
    return li;
  }

  function choiceGroup(buttons) {
    return el(
      "div",
      { class: "choices", role: "group", "aria-label": T("choices") },
      buttons.map((button) => {
        state.titles.set(button.payload, button.title);
        return el("button", {
          type: "button",
          class: "choice",
          "data-payload": button.payload,
          text: button.title,
        });
      })
    );
  }

  function offerList(offers) {
    return el("ul", { class: "offers", "aria-label": T("offers.label") }, offers.map(offerCard));
  }

  function splitSummary(text) {
    // The first sentence is the card's one line; the rest waits behind "Read more".
    const match = /^([\s\S]+?[.!?])\s+(?=[A-ZÆØÅ])/.exec(text || "");
    return match ? [match[1], text.slice(match[0].length)] : [text || "", ""];
  }

  function offerCard(offer) {
    const url = safeHttpUrl(offer.url);
    const [line, more] = splitSummary(offer.summary);
    const access = offer.access && texts["offers.access." + offer.access] ? offer.access : null;
    const place =
      offer.municipality === "national"
        ? T("offers.national")
        : offer.municipality
          ? T("offers.municipality", { name: offer.municipality })
          : null;
    return el("li", { class: "offer" }, [
      el("h3", {}, [url ? externalLink(url, offer.title) : offer.title]),
      el("ul", { class: "offer-meta" }, [
        access ? el("li", { class: "badge access-" + access, text: T("offers.access." + access) }) : null,
        place ? el("li", { class: "badge badge-place", text: place }) : null,
      ]),
      line ? el("p", { class: "offer-summary", text: line }) : null,
      offer.next_step
        ? el("p", { class: "offer-next" }, [el("strong", { text: T("offers.next_step") }), " " + offer.next_step])
        : null,
      more ? el("details", {}, [el("summary", { text: T("offers.more") }), el("p", { text: more })]) : null,
      contactList(offer.contact || {}, url),
      // when staff last checked it, and whether to confirm it with the municipality (server texts)
      offer.checked ? el("p", { class: "offer-checked", text: offer.checked }) : null,
      offer.confirm ? el("p", { class: "offer-confirm", text: offer.confirm }) : null,
    ]);
  }

  function contactList(contact, offerUrl) {
    const tel = contact.phone ? telUri(contact.phone) : null;
    const site = safeHttpUrl(contact.url);
    const links = [
      tel ? el("a", { href: tel, text: T("offers.call", { number: contact.phone }) }) : null,
      site && site !== offerUrl ? externalLink(site, T("offers.website")) : null,
      contact.email ? el("a", { href: "mailto:" + contact.email, text: T("offers.email") }) : null,
    ].filter(Boolean);
    return links.length ? el("ul", { class: "offer-contact" }, links.map((a) => el("li", {}, [a]))) : null;
  }

  function crisisBanner(text) {
    const headingId = "crisis-" + ++uid;
    const banner = el("section", { class: "crisis", "aria-labelledby": headingId }, [
      el("h3", { id: headingId, text: T("crisis.heading") }),
      el("p", { class: "crisis-text", text: text }),
    ]);
    crisisLines()
      .then((lines) => {
        // The lines the reply names (112 and the ones that fit); all of them if it names none.
        const named = lines.filter((line) => text.includes(line.number));
        banner.append(
          el("p", { class: "crisis-lines-label", text: T("crisis.lines") }),
          el("ul", { class: "crisis-lines" }, (named.length ? named : lines).map(callLink))
        );
        // Just arrived and the newest message: bring the call links into view with it.
        const li = banner.parentElement;
        if (li && li.dataset.live && li === ui.messages.lastElementChild) reveal(li, "start");
      })
      .catch(() => {}); // the reply's own text still gives the numbers
    return banner;
  }

  function callLink(line) {
    const name = line.emergency
      ? T("crisis.call", { name: line.number })
      : T("crisis.call_number", { name: line.name, number: line.number });
    return el("li", {}, [
      el("a", { class: "call" + (line.emergency ? " call-emergency" : ""), href: line.tel_uri }, [
        el("span", { class: "call-name", text: name }),
        el("span", { class: "call-meta", text: line.audience }),
        el("span", { class: "call-meta", text: line.hours }),
      ]),
    ]);
  }

  function crisisLines() {
    if (!state.crisisLines) {
      state.crisisLines = fetchJson(API + "/crisis-lines?language=" + config.language)
        .then((body) => body.lines)
        .catch((error) => {
          state.crisisLines = null; // ask again next time
          throw error;
        });
    }
    return state.crisisLines;
  }

  // --- placing messages by transcript id ----------------------------------------------------

  function compareIds(a, b) {
    const [aMs, aSeq] = a.split("-").map(Number);
    const [bMs, bSeq] = b.split("-").map(Number);
    return aMs - bMs || (aSeq || 0) - (bSeq || 0);
  }

  function insertMessage(li, id) {
    const later = Array.from(ui.messages.querySelectorAll("li[data-id]")).find(
      (node) => compareIds(node.dataset.id, id) > 0
    );
    ui.messages.insertBefore(li, later || ui.messages.querySelector("li.is-pending"));
  }

  function accept(message, live) {
    if (state.seen.has(message.id)) return;
    state.seen.add(message.id);
    advanceCursor(message.id);
    if (message.from === "user") {
      const pending = Array.from(ui.messages.querySelectorAll("li.is-pending")).find(
        (node) => node.dataset.text === message.text
      );
      if (pending) pending.remove();
    }
    const li = renderMessage(message);
    insertMessage(li, message.id);
    disableAnsweredChoices();
    ui.erase.hidden = false;
    ui.exportButton.hidden = false;
    if (live) {
      li.dataset.live = "1";
      if (message.from !== "user") announce(message);
      // Someone told to call 112 keeps the call in sight: a notice after it (their place in the
      // queue) is announced, not scrolled to, until they write again.
      if (message.from === "user" || message.crisis || !crisisAwaitsReply()) {
        reveal(li, message.from === "user" ? "end" : "start");
      }
    }
  }

  function crisisAwaitsReply() {
    // the newest emergency reply comes after the citizen's newest message
    for (let li = ui.messages.lastElementChild; li; li = li.previousElementSibling) {
      if (li.classList.contains("msg-user")) return false;
      if (li.querySelector(".crisis")) return true;
    }
    return false;
  }

  function advanceCursor(id) {
    if (id && (!state.cursor || compareIds(id, state.cursor) > 0)) state.cursor = id;
  }

  function disableAnsweredChoices() {
    // Choices before the citizen's latest message are history: shown, no longer pressable.
    const items = Array.from(ui.messages.children);
    let lastUser = -1;
    items.forEach((li, index) => {
      if (li.classList.contains("msg-user")) lastUser = index;
    });
    items.forEach((li, index) => {
      li.querySelectorAll(".choice").forEach((button) => {
        button.disabled = index < lastUser;
      });
    });
  }

  function reveal(node, block) {
    node.scrollIntoView({ block: block, behavior: reducedMotion ? "auto" : "smooth" });
  }

  function announce(message) {
    if (message.crisis) {
      ui.urgent.textContent = T("announce.crisis") + ": " + message.text;
      return;
    }
    const parts = [T("sender." + message.from) + ":", message.text];
    if (message.offers && message.offers.length) {
      parts.push(T("announce.offers", { count: message.offers.length }));
    }
    if (message.buttons && message.buttons.length) {
      parts.push(T("announce.choices", { count: message.buttons.length }));
    }
    const note = el("p", { text: parts.join(" ") });
    ui.polite.append(note);
    window.setTimeout(() => note.remove(), ANNOUNCE_KEEP_MS);
  }

  function setStatus(text, isError) {
    ui.status.textContent = text || "";
    ui.status.classList.toggle("is-error", Boolean(text && isError));
  }

  function setSending(change) {
    state.sending += change;
    ui.typing.hidden = state.sending === 0;
  }

  // --- talking to the gateway ---------------------------------------------------------------

  function withToken(headers) {
    return state.token ? Object.assign({ [TOKEN_HEADER]: state.token }, headers) : headers;
  }

  async function fetchJson(url, options) {
    const response = await fetch(url, Object.assign({ headers: { Accept: "application/json" } }, options));
    if (!response.ok) {
      const error = new Error("HTTP " + response.status);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  function conversationUrl(suffix) {
    return API + "/chat/" + encodeURIComponent(state.id) + (suffix || "");
  }

  function newConversation() {
    const bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    state.id = "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    state.token = null;
    state.cursor = null;
  }

  function keepToken(id, token) {
    if (id !== state.id || !TOKEN.test(token)) return;
    state.token = token;
    tab.set(STORAGE.conversation, id);
    tab.set(STORAGE.token, token);
  }

  /* The gateway no longer opens the conversation to this tab (erased, or its retention time
     ended): let go of it; the next message starts a new one. */
  function forget() {
    stopFollowing();
    tab.remove(STORAGE.conversation);
    tab.remove(STORAGE.token);
    Object.assign(state, { id: null, token: null, cursor: null });
  }

  async function catchUp(live) {
    const after = state.cursor ? "?after=" + encodeURIComponent(state.cursor) : "";
    let page;
    try {
      // The token goes only to the conversation's own addresses.
      page = await fetchJson(conversationUrl("/messages" + after), {
        headers: withToken({ Accept: "application/json" }),
      });
    } catch (error) {
      if (error.status === 403) forget();
      throw error;
    }
    page.messages.forEach((message) => accept(message, live));
    advanceCursor(page.cursor);
    return page.messages.length;
  }

  /* The live stream. A browser's EventSource cannot send the token header, and a token in the
     URL would land in logs, so the stream is read with fetch() and parsed here. */
  function followLive() {
    if (!state.token || state.stream || state.poll) return;
    if (!window.AbortController || !window.TextDecoder || !window.ReadableStream) {
      startPolling();
      return;
    }
    const controller = new AbortController();
    state.stream = controller;
    (async () => {
      while (state.stream === controller) {
        let response = null;
        const after = state.cursor ? "?after=" + encodeURIComponent(state.cursor) : "";
        try {
          response = await fetch(conversationUrl("/events" + after), {
            headers: withToken({ Accept: "text/event-stream" }),
            cache: "no-store",
            signal: controller.signal,
          });
        } catch (error) {
          response = null; // the network: try again shortly
        }
        if (state.stream !== controller) return;
        if (response && response.status === 403) {
          forget();
          return;
        }
        const type = response ? response.headers.get("Content-Type") || "" : "";
        if (response && !(response.ok && response.body && type.startsWith("text/event-stream"))) {
          // Refused (e.g. by a proxy): poll instead.
          state.stream = null;
          startPolling();
          return;
        }
        if (response) {
          try {
            await readEvents(response.body, controller);
          } catch (error) {
            /* dropped: open it again below, after the last message seen */
          }
        }
        if (state.stream !== controller) return;
        await new Promise((resolve) => window.setTimeout(resolve, RETRY_MS));
      }
    })();
  }

  async function readEvents(body, controller) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let data = [];
    while (state.stream === controller) {
      const { value, done } = await reader.read();
      if (done) return;
      let text = buffer + decoder.decode(value, { stream: true });
      // A "\r" at the end may be the first half of "\r\n": keep it for the next chunk.
      const held = text.endsWith("\r") ? "\r" : "";
      if (held) text = text.slice(0, -1);
      const lines = text.split(/\r\n|\r|\n/);
      buffer = lines.pop() + held;
      for (const line of lines) {
        if (line === "") {
          // A blank line ends an event. Its id is the message's own id (the cursor), so only
          // the data is needed; comments (":") and "retry:" need nothing.
          if (data.length) accept(JSON.parse(data.join("\n")), true);
          data = [];
        } else if (line.startsWith("data:")) {
          data.push(line.slice(5).replace(/^ /, ""));
        }
      }
    }
    reader.cancel().catch(() => {});
  }

  function startPolling() {
    state.poll = window.setInterval(() => {
      if (state.token) catchUp(true).catch(() => {});
    }, POLL_MS);
  }

  function stopFollowing() {
    const stream = state.stream;
    state.stream = null;
    if (stream) stream.abort();
    if (state.poll) window.clearInterval(state.poll);
    state.poll = null;
  }

  /* POST one message. The first message of a new conversation goes alone: its answer brings the
     token every later message needs, so messages written meanwhile wait for it. A 403 means the
     id is not (or no longer) this tab's: the message then starts a new conversation, once. */
  async function postMessage(text) {
    for (let attempt = 0; ; attempt += 1) {
      while (state.opening) await state.opening;
      let opened = null;
      if (!state.token) {
        newConversation();
        state.opening = new Promise((resolve) => (opened = resolve));
      }
      const id = state.id;
      const body = { conversation_id: id, text: text };
      if (config.chosen_language) body.language = config.chosen_language;
      let response = null;
      try {
        response = await fetch(API + "/chat", {
          method: "POST",
          headers: withToken({ "Content-Type": "application/json", Accept: "application/json" }),
          body: JSON.stringify(body),
        });
        // The token comes with the first answer: 200, 503 (engine down) and even 429.
        const answer = await response
          .clone()
          .json()
          .catch(() => null);
        if (answer && typeof answer.conversation_token === "string") keepToken(id, answer.conversation_token);
        // The citizen agreed to be asked later whether help came: the key (not the token) stays.
        if (answer && typeof answer.followup_key === "string" && TOKEN.test(answer.followup_key)) {
          store.set(STORAGE.followup, answer.followup_key);
        }
      } catch (error) {
        response = null;
      } finally {
        if (opened) {
          state.opening = null;
          opened();
        }
      }
      if (response && response.status === 403 && attempt === 0) {
        if (state.id === id) forget();
        continue;
      }
      return response;
    }
  }

  /* Send one message; `shown` is what the citizen sees as their message (a button's title).
     Resolves true when the gateway has the message. */
  async function send(text, shown) {
    setSending(1);
    setStatus("");
    const pending = el("li", { class: "msg msg-user is-pending", "data-text": text }, [
      senderLine("user"),
      el("div", { class: "msg-body" }, [el("p", { text: shown || text })]),
    ]);
    if (shown) state.titles.set(text, shown);
    ui.messages.append(pending);
    disableAnsweredChoices();
    reveal(pending, "end");

    try {
      const response = await postMessage(text);
      if (response === null) return fail(pending, T("errors.network"));
      if (response.status === 429) {
        const seconds = parseInt(response.headers.get("Retry-After"), 10) || 10;
        return fail(pending, T("errors.rate_limited", { seconds: seconds }));
      }
      // 200, and 503 (the engine is down: the message is kept and the reply says so in Danish):
      // the transcript holds the message and the replies.
      const stored = response.ok || response.status === 503;
      if (state.token) await catchUp(true).catch(() => {});
      if (!stored && pending.isConnected) return fail(pending, T("errors.server"));
      if (!stored) setStatus(T("errors.server"), true);
      followLive();
      return true;
    } finally {
      setSending(-1);
    }
  }

  function fail(pending, message) {
    pending.remove();
    disableAnsweredChoices();
    setStatus(message, true);
    return false;
  }

  async function erase() {
    let erased = false;
    ui.eraseConfirm.disabled = true;
    try {
      const response = await fetch(conversationUrl(), { method: "DELETE", headers: withToken({}) });
      // 403: the gateway holds nothing this tab can reach any more (already erased, or expired).
      erased = response.ok || response.status === 403;
    } catch (error) {
      erased = false;
    }
    ui.eraseConfirm.disabled = false;
    if (!erased) {
      ui.dialog.close();
      setStatus(T("errors.erase"), true);
      return;
    }
    forget();
    state.seen = new Set();
    ui.messages.querySelectorAll("li:not(.msg-welcome)").forEach((li) => li.remove());
    disableAnsweredChoices();
    ui.erase.hidden = true;
    ui.exportButton.hidden = true;
    ui.dialog.close();
    setStatus(T("erase.done"));
  }

  /* The citizen's own copy (GDPR art. 15): fetched with the token in its header, then saved as a
     file, so the token never appears in a link. */
  async function exportCopy() {
    try {
      const response = await fetch(`${conversationUrl()}/export?language=${config.language}`, {
        headers: withToken({}),
      });
      if (!response.ok) throw new Error(String(response.status));
      const link = document.createElement("a");
      link.href = URL.createObjectURL(await response.blob());
      link.download = "samtale.txt";
      document.body.appendChild(link);
      link.click();
      link.remove();
      setStatus(T("export.done"));
    } catch (error) {
      setStatus(T("errors.export"), true);
    }
  }

  // --- wiring -------------------------------------------------------------------------------

  async function submitTyped() {
    const text = ui.input.value.trim();
    if (!text) return;
    ui.input.value = "";
    const sent = await send(text);
    if (!sent && !ui.input.value) ui.input.value = text; // keep what was typed for another try
  }

  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitTyped();
  });

  ui.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submitTyped();
    }
  });

  ui.messages.addEventListener("click", (event) => {
    const button = event.target.closest("button.choice");
    if (!button || button.disabled) return;
    // A keyboard press (detail 0) keeps the keyboard user in the flow: on to the message box.
    if (event.detail === 0) ui.input.focus();
    send(button.dataset.payload, button.textContent);
  });

  ui.erase.addEventListener("click", () => ui.dialog.showModal());
  ui.exportButton.addEventListener("click", exportCopy);
  ui.eraseCancel.addEventListener("click", () => ui.dialog.close());
  ui.eraseConfirm.addEventListener("click", erase);
  // Focus goes back where the citizen was, or to the message box of the new conversation.
  ui.dialog.addEventListener("close", () => (ui.erase.hidden ? ui.input : ui.erase).focus());

  document.querySelectorAll("[data-language]").forEach((link) => {
    link.addEventListener("click", () => store.set(STORAGE.language, link.dataset.language));
  });

  document.addEventListener("visibilitychange", () => {
    // Phones drop connections in the background: fetch what came meanwhile on return.
    if (document.visibilityState === "visible" && state.token) catchUp(true).catch(() => {});
  });

  if (config.embed) {
    const closeFrame = () => window.parent.postMessage({ type: "indgang:close" }, "*");
    document.querySelectorAll('[data-action="close-embed"]').forEach((button) => {
      button.addEventListener("click", closeFrame);
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !ui.dialog.open) closeFrame();
    });
    window.addEventListener("message", (event) => {
      if (event.source === window.parent && event.data && event.data.type === "indgang:opened") {
        ui.input.focus();
      }
    });
  }

  /* A follow-up the citizen agreed to, on a later visit: its key (kept across visits, unlike the
     conversation's token, and opening nothing but the one question) is shown to the gateway,
     which asks it in a new conversation once it is due. */
  async function followUp() {
    const key = store.get(STORAGE.followup);
    if (!key || !TOKEN.test(key)) return;
    let response;
    try {
      response = await fetch(API + "/followup", {
        method: "POST",
        headers: { [FOLLOWUP_HEADER]: key, Accept: "application/json" },
      });
    } catch (error) {
      return; // asked on a later visit
    }
    if (response.status === 404 || response.status === 200) store.remove(STORAGE.followup);
    if (response.status !== 200 || state.id) return; // the citizen began writing meanwhile
    const found = await response.json();
    state.id = found.conversation_id;
    keepToken(found.conversation_id, found.conversation_token);
    await catchUp(true);
    followLive();
  }

  // --- start --------------------------------------------------------------------------------

  texts["welcome.buttons"].forEach((button) => state.titles.set(button.payload, button.title));
  crisisLines().catch(() => {});
  if (state.token) {
    (async () => {
      try {
        while ((await catchUp(false)) > 0) {
          /* a long conversation comes in pages */
        }
      } catch (error) {
        /* the live stream brings the conversation when the network is back */
      }
      const last = ui.messages.lastElementChild;
      if (last && !last.classList.contains("msg-welcome")) reveal(last, "end");
      followLive();
    })();
  } else {
    followUp().catch(() => {});
  }
})();
