// The demo's client: it sends events by fetch POST, one at a time and in
// order, and swaps in the HTML the server renders. Each event carries the
// page's token and the CSRF token; each reply brings a fresh page token,
// which also replaces the one in the address bar, so a reload resumes the
// page however long it has been open.
"use strict";
(function () {
  const csrf = document.body.dataset.csrf;
  let tok = document.body.dataset.token;
  let queue = Promise.resolve();
  let pending = 0;

  function setToken(t) {
    tok = t;
    history.replaceState(null, "", "/?t=" + encodeURIComponent(t));
  }

  function send(event, value) {
    pending++;
    document.body.dataset.pending = pending;
    queue = queue.then(async () => {
      const body = new URLSearchParams({ event: event, value: value || "", t: tok, csrf: csrf });
      const res = await fetch("/event", { method: "POST", body: body });
      if (res.status === 409) { location.reload(); return; }
      if (!res.ok) { throw new Error(event + ": " + res.status + " " + (await res.text())); }
      const reply = await res.json();
      setToken(reply.token);
      document.getElementById("live").innerHTML = reply.live;
      if (reply.append) {
        document.getElementById("gallery").insertAdjacentHTML("beforeend", reply.append);
      }
    }).catch((err) => {
      document.getElementById("live").insertAdjacentHTML("afterbegin",
        '<p class="error"></p>');
      document.querySelector("#live .error").textContent = String(err);
    }).finally(() => {
      pending--;
      document.body.dataset.pending = pending;
    });
  }

  document.querySelectorAll("button[data-event]").forEach((b) => {
    b.addEventListener("click", () => send(b.dataset.event));
  });
  const input = document.getElementById("text");
  input.addEventListener("input", () => send("input", input.value));
  setToken(tok);
  document.body.dataset.pending = 0;
})();
