// Reference: a Node.js broadcast server with the `ws` package, as its README shows it.
const { WebSocketServer, WebSocket } = require("ws");

const port = parseInt(process.argv[2], 10);
const wss = new WebSocketServer({ host: "127.0.0.1", port, perMessageDeflate: false, maxPayload: 65536 });

wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => {
    for (const client of wss.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    }
  });
});
