// The demo's client: it sends events by fetch POST, one at a time and in
// order, and swaps in the HTML the server renders.
"use strict";
(function () {
  const id = document.body.dataset.id;
  let queue = Promise.resolve();
  let pending = 0;

  function send(event, value) {
    pending++;
    document.body.dataset.pending = pending;
    queue = queue.then(async () => {
      const body = new URLSearchParams({ event: event, value: value || "" });
      const res = await fetch("/event?id=" + encodeURIComponent(id), { method: "POST", body: body });
      if (res.status === 409) { location.reload(); return; }
      if (!res.ok) { throw new Error(event + ": " + res.status + " " + (await res.text())); }
      const reply = await res.json();
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
  document.body.dataset.pending = 0;
})();
