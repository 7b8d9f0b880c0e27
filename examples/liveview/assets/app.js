// Starts the unmodified Phoenix LiveView client (the globals Phoenix and
// LiveView come from the npm packages' prebuilt browser files).
const csrfToken = document.querySelector("meta[name='csrf-token']").getAttribute("content");
const liveSocket = new LiveView.LiveSocket("/live", Phoenix.Socket, {params: {_csrf_token: csrfToken}});
liveSocket.connect();
window.liveSocket = liveSocket;
