// The live wire page's script: it reads /wire/events (Server-Sent Events)
// and draws each frame as the lesson page does, an arrow between the client
// and the server lanes with the sniffer's bytes beside it, and, on the
// teacher's stream, what the peer read. Every text from the wire goes into
// the page as text (textContent), never as markup.
"use strict";
(function () {
  var MAX_ROWS = 400; // list items kept on the page
  var MAX_PAUSED = 2000; // events held while paused
  var MAX_CONN_ROWS = 60; // rows of the connections table
  var ICONS = { clear: 1, key: 1, sealed: 1, partial: 1, unknown: 1 };
  var SVG = "http://www.w3.org/2000/svg";
  var LANE = 220;

  var frames = document.getElementById("frames");
  var statusEl = document.getElementById("status");
  var modeEl = document.getElementById("mode");
  var only = document.getElementById("only");
  var pauseBtn = document.getElementById("pause");
  var projector = document.getElementById("projector");
  var follow = document.getElementById("follow");
  var connsBody = document.querySelector("#conns tbody");
  var noConns = document.getElementById("noconns");

  // The teacher's token: taken from the address once, kept for this tab
  // only, and taken out of the address bar, which the projector shows.
  var token = null;
  var params = new URLSearchParams(location.search);
  try {
    if (params.has("token")) {
      token = params.get("token");
      sessionStorage.setItem("encchat-wire-token", token);
      params.delete("token");
      var q = params.toString();
      history.replaceState(null, "", location.pathname + (q ? "?" + q : "") + location.hash);
    } else {
      token = sessionStorage.getItem("encchat-wire-token");
    }
  } catch (e) {
    token = params.get("token");
  }

  // Projector scale: a switch, remembered in this browser.
  function setProjector(on) {
    document.documentElement.classList.toggle("projector", on);
    projector.checked = on;
    try { localStorage.setItem("encchat-wire-projector", on ? "1" : "0"); } catch (e) {}
  }
  var proj = params.get("projector");
  if (proj === null) {
    try { proj = localStorage.getItem("encchat-wire-projector"); } catch (e) {}
  }
  setProjector(proj === "1");
  projector.addEventListener("change", function () { setProjector(projector.checked); });

  var started = 0; // ms since the epoch when t is 0
  var teacher = false;
  var conns = {}; // id → {row, frames:[c2s,s2c], closed}
  var caughtUp = false; // the history is drawn: frames now cross as they come
  var paused = false;
  var held = [];
  var heldLost = 0;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function setStatus(text, bad) {
    statusEl.textContent = text;
    statusEl.classList.toggle("bad", !!bad);
  }
  function clock(t) {
    if (!started) return t.toFixed(3) + " s";
    var d = new Date(started + t * 1000);
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds());
  }

  // Following: the page stays at the newest frame unless the reader has
  // scrolled up to look at an older one.
  function atBottom() {
    return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 120;
  }
  function append(li, conn) {
    var stay = atBottom();
    if (conn) {
      li.setAttribute("data-conn", String(conn));
      if (only.value && only.value !== String(conn)) li.hidden = true;
    }
    frames.appendChild(li);
    while (frames.children.length > MAX_ROWS) frames.removeChild(frames.firstElementChild);
    if (stay) {
      window.scrollTo(0, document.documentElement.scrollHeight);
      follow.hidden = true;
    } else {
      follow.hidden = false;
    }
  }
  document.getElementById("tobottom").addEventListener("click", function () {
    window.scrollTo(0, document.documentElement.scrollHeight);
    follow.hidden = true;
    var last = frames.lastElementChild;
    if (last) { last.tabIndex = -1; last.focus({ preventScroll: true }); }
  });
  window.addEventListener("scroll", function () { if (atBottom()) follow.hidden = true; }, { passive: true });

  only.addEventListener("change", function () {
    var v = only.value;
    for (var li = frames.firstElementChild; li; li = li.nextElementSibling) {
      var c = li.getAttribute("data-conn");
      li.hidden = !!(v && c && c !== v);
    }
  });

  pauseBtn.addEventListener("click", function () {
    paused = !paused;
    pauseBtn.setAttribute("aria-pressed", paused ? "true" : "false");
    pauseBtn.textContent = paused ? "Resume" : "Pause";
    if (paused) {
      setStatus("Paused: the wire goes on; new frames are held until you resume.");
      return;
    }
    var list = held, lost = heldLost;
    held = []; heldLost = 0;
    if (lost) skipped({ skipped: lost, why: "more went by than this page holds while paused" });
    list.forEach(function (ev) { handle(ev.type, ev.data); });
    setStatus(caughtUp ? "Live: each frame appears as it crosses the wire." : "Drawing the last frames…");
  });

  // The connections table and the connection filter.
  function connRow(c) {
    var s = conns[c.conn];
    if (!s) {
      var tr = el("tr");
      [["conn", c.conn, ""], ["client", c.client || "?", "mono"], ["suite", c.suite || "…", ""],
        ["frames c→s / s→c", "0 / 0", ""], ["state", "open", ""]].forEach(function (cell) {
        var td = el("td", cell[2], cell[1]);
        td.setAttribute("data-label", cell[0]);
        tr.appendChild(td);
      });
      connsBody.appendChild(tr);
      var opt = el("option", "", "conn " + c.conn + " · " + (c.client || "?"));
      opt.value = String(c.conn);
      only.appendChild(opt);
      s = conns[c.conn] = { row: tr, opt: opt, frames: [0, 0], closed: false };
      trimConns();
    }
    if (c.suite) s.row.cells[2].textContent = c.suite;
    noConns.hidden = true;
    return s;
  }
  function trimConns() {
    var rows = connsBody.rows;
    for (var i = 0; rows.length > MAX_CONN_ROWS && i < rows.length; ) {
      var id = rows[i].cells[0].textContent;
      if (conns[id] && conns[id].closed) {
        connsBody.removeChild(rows[i]);
        if (only.value !== id) only.removeChild(conns[id].opt);
        delete conns[id];
      } else i++;
    }
  }
  function clearAll() {
    frames.textContent = "";
    connsBody.textContent = "";
    while (only.options.length > 1) only.remove(1);
    only.value = "";
    conns = {};
    noConns.hidden = false;
  }

  function arrow(f) {
    var c2s = f.dir === "c2s";
    var s = svg("svg", { "class": "arrow " + f.dir, width: LANE, height: 60, viewBox: "0 0 " + LANE + " 60", role: "img" });
    var what = (f.step ? f.step + ", " : "") + f.what;
    s.setAttribute("aria-label", "frame " + f.n + ", conn " + f.conn + ": " + f.arrow + ", " + f.len + " bytes, " + what);
    var label = svg("text", { "class": "label", x: LANE / 2, y: 13, "text-anchor": "middle" });
    label.textContent = f.label || f.kind;
    s.appendChild(label);
    if (c2s) {
      s.appendChild(svg("line", { "class": "shaft", x1: 3, y1: 30, x2: LANE - 12, y2: 30 }));
      s.appendChild(svg("polygon", { "class": "head", points: (LANE - 1) + ",30 " + (LANE - 15) + ",23 " + (LANE - 15) + ",37" }));
    } else {
      s.appendChild(svg("line", { "class": "shaft", x1: LANE - 3, y1: 30, x2: 12, y2: 30 }));
      s.appendChild(svg("polygon", { "class": "head", points: "15,23 1,30 15,37" }));
    }
    var icon = ICONS[f.icon] ? f.icon : "unknown";
    s.appendChild(svg("use", { href: "#i-" + icon, x: LANE / 2 - 12, y: 20, width: 24, height: 20 }));
    var size = svg("text", { "class": "size", x: LANE / 2, y: 54, "text-anchor": "middle" });
    size.textContent = f.len + " B · " + f.size;
    s.appendChild(size);
    return s;
  }

  function frame(f) {
    var s = connRow({ conn: f.conn, suite: f.suite });
    s.frames[f.dir === "c2s" ? 0 : 1]++;
    s.row.cells[3].textContent = s.frames[0] + " / " + s.frames[1];
    (f.work || []).forEach(function (w) {
      var li = el("li", "work " + (w.by === "server" ? "server" : "client"));
      li.appendChild(el("div", "when"));
      var lanes = el("div", "lanes");
      lanes.appendChild(el("span", "box", w.label));
      li.appendChild(lanes);
      li.appendChild(el("div", "", w.text));
      append(li, f.conn);
    });

    var li = el("li", "row " + (caughtUp ? "fresh " : "") + f.dir);
    var when = el("div", "when");
    when.appendChild(el("b", "", "#" + f.n));
    when.appendChild(el("span", "conn-badge", "conn " + f.conn));
    when.appendChild(el("div", "", clock(f.t)));
    li.appendChild(when);
    var lanes = el("div", "lanes");
    lanes.appendChild(arrow(f));
    li.appendChild(lanes);

    var sn = el("div", "sniffer");
    if (f.step) sn.appendChild(el("div", "step", f.step));
    var what = el("div", "what");
    what.appendChild(el("span", "tag " + f.dir, f.arrow));
    what.appendChild(document.createTextNode(" " + f.what));
    sn.appendChild(what);
    (f.details || []).forEach(function (d) { sn.appendChild(el("div", "detail", d)); });
    var wire = el("div", "wirebytes");
    var hdr = el("span", "hdr", f.header);
    hdr.title = "the frame's 10-digit length header, as on the wire";
    wire.appendChild(hdr);
    if (f.pem) {
      wire.appendChild(el("pre", "pem", f.pem));
    } else {
      wire.appendChild(el("span", "bytes", f.wire));
      wire.appendChild(el("span", "wnote", " (" + f.wireNote + ")"));
    }
    sn.appendChild(wire);
    li.appendChild(sn);

    if (f.peer) {
      var p = f.peer, pe = el("div", "peer");
      if (p.hasText) {
        pe.appendChild(el("div", "text", p.text + (p.cut ? " … (" + p.cut + " more characters)" : "")));
        pe.appendChild(el("div", "key", "decrypted with " + p.key));
      } else if (p.problem) {
        pe.appendChild(el("div", "problem", "✗ " + p.problem));
      }
      (p.lines || []).forEach(function (l) {
        pe.appendChild(el("div", l === "no key: ciphertext only" ? "nokey" : "", l));
      });
      (p.notes || []).forEach(function (n) { pe.appendChild(el("div", "note", "note: " + n)); });
      li.appendChild(pe);
    }
    append(li, f.conn);
    if (caughtUp) setTimeout(function () { li.classList.remove("fresh"); }, 1500);

    if (f.band) {
      var b = el("li", "band");
      b.appendChild(el("div", "when"));
      b.appendChild(el("div", "lanes", "SECURE CHANNEL"));
      b.appendChild(el("div", "", f.band));
      append(b, f.conn);
    }
  }

  function skipped(s) {
    var li = el("li", "skipped", "⚠ " + s.skipped + " events skipped: " + s.why + ".");
    append(li, 0);
    setStatus("Live, but " + s.skipped + " events went by while this screen was behind.", true);
  }

  function handle(type, d) {
    if (paused && type !== "hello") {
      held.push({ type: type, data: d });
      if (held.length > MAX_PAUSED) { held.shift(); heldLost++; }
      return;
    }
    switch (type) {
      case "open":
        connRow(d);
        append(el("li", "note", "conn " + d.conn + " opened by " + d.client + " at " + clock(d.t)), d.conn);
        break;
      case "frame":
        frame(d);
        break;
      case "close": {
        var s = conns[d.conn];
        if (s) {
          s.closed = true;
          s.row.classList.add("closed");
          s.row.cells[4].textContent = d.closed ? "closed" : "open at shutdown";
          trimConns();
        }
        append(el("li", "endconn", "conn " + d.conn + " " + (d.closed ? "closed" : "still open when the server stopped") + " at " + clock(d.t) +
          ": client → server " + d.frames[0] + " frames, " + d.bytes[0] + " B · server → client " + d.frames[1] + " frames, " + d.bytes[1] + " B"), d.conn);
        break;
      }
      case "note":
        append(el("li", "note", (d.conn ? "conn " + d.conn + ": " : "") + d.text), d.conn);
        break;
      case "skipped":
        skipped(d);
        break;
    }
  }

  function hello(h) {
    started = Date.parse(h.started) || 0;
    teacher = !!h.teacher;
    if (!h.resumed) clearAll();
    document.querySelector(".wire").classList.toggle("nopeer", !teacher);
    document.querySelector(".peeronly").hidden = !teacher;
    modeEl.classList.toggle("teacher", teacher);
    modeEl.textContent = teacher
      ? "Teacher view: beside each frame, the text the peer read (the server holds every session's key). Do not leave this screen to the class."
      : "Sniffer view: what anyone on the network sees. The words stay sealed.";
    (h.conns || []).forEach(connRow);
    caughtUp = false;
    setStatus(h.resumed ? "Back on the wire: the frames missed while away follow." : "Drawing the last frames…");
  }

  var es = null;
  function connect() {
    var url = "/wire/events" + (token !== null ? "?token=" + encodeURIComponent(token) : "");
    es = new EventSource(url);
    es.addEventListener("hello", function (e) { hello(JSON.parse(e.data)); });
    es.addEventListener("live", function () {
      caughtUp = true;
      if (!paused) setStatus("Live: each frame appears as it crosses the wire.");
    });
    ["open", "frame", "close", "note", "skipped"].forEach(function (type) {
      es.addEventListener(type, function (e) { handle(type, JSON.parse(e.data)); });
    });
    es.onerror = function () {
      if (es.readyState === EventSource.CLOSED) {
        es.close();
        if (token !== null) {
          // A refused token (the server restarted with another): forget it
          // and show the public view.
          token = null;
          try { sessionStorage.removeItem("encchat-wire-token"); } catch (e) {}
          setStatus("The teacher's token was refused (has the server restarted?): this is the public view now.", true);
        } else {
          setStatus("The wire is unreachable; trying again…", true);
        }
        setTimeout(connect, 3000);
        return;
      }
      setStatus("Connection to the wire lost; reconnecting…", true);
    };
  }
  connect();
})();
