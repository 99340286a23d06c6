/* servicecircle what-if page: switch facilities and candidate sites on and off, watch coverage.
 *
 * The page's JSON (see servicecircle/whatif_page.py for the encoding) holds, per tier and
 * site, the demand points the site reaches within the tier. Per tier and point the page keeps
 * how many chosen sites reach it: a point is covered when that count is above zero, so a toggle
 * only walks the toggled site's points. Every user string (ids, names, tier labels) reaches the
 * DOM through textContent only. window.servicecircleWhatIf is the API for tests and scripts:
 * toggle(id), chosen(), figures(), reset(), plus geojson(), csv(), colourBy(tier), ready.
 */
(function () {
  "use strict";

  function bytes(text) {
    var bin = atob(text || ""), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function decode(text, Type) {
    var b = bytes(text);
    return new Type(b.buffer, 0, b.length / Type.BYTES_PER_ELEMENT);
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function num(v) {
    return v.toLocaleString("en-US", { maximumFractionDigits: 0 });
  }
  function signed(v) {
    var r = Math.round(v);
    return (r > 0 ? "+" : r < 0 ? "−" : "±") + num(Math.abs(r));
  }
  function pct(v, digits) {
    return v === null ? "–" : (v * 100).toFixed(digits === undefined ? 1 : digits) + "%";
  }

  /* ------------------------------------------------------------------ data */
  function tierState(spec, S, n) {
    var count = decode(spec.count, Uint32Array), raw = bytes(spec.points);
    var off = new Uint32Array(S + 1);
    for (var k = 0; k < S; k++) off[k + 1] = off[k] + count[k];
    var pts = new Int32Array(off[S]), pos = 0;
    for (k = 0; k < S; k++) {
      var prev = -1;
      for (var j = off[k], end = off[k + 1]; j < end; j++) {
        var v = 0, shift = 0, b;
        do {
          b = raw[pos++];
          v |= (b & 127) << shift;
          shift += 7;
        } while (b & 128);
        prev += v;
        pts[j] = prev;
      }
    }
    return {
      name: spec.name, label: spec.label, target: spec.target_m, goal: spec.goal,
      kinds: spec.kinds, off: off, pts: pts, walk: decode(spec.walk, Uint16Array),
      unit: spec.walk_unit_m, cnt: new Uint16Array(n), startCov: new Uint8Array(n), start: 0
    };
  }

  /* ------------------------------------------------------------------ residents on canvas */
  // Discs are rasterised into an ImageData buffer (one Uint32 per pixel) and put on the
  // canvas in one call: a canvas path of 100 k arcs costs Chrome hundreds of milliseconds to
  // rasterise, this a few. Changes (newly covered, no longer covered) are drawn last, on top.
  var ORDER = [4, 0, 3, 1, 2];
  function rgba(hex) {
    var v = parseInt(hex.slice(1), 16);
    return ((255 << 24) | ((v & 255) << 16) | (v & 0xff00) | ((v >> 16) & 255)) >>> 0;
  }
  var Residents = L.Layer.extend({
    initialize: function (app) {
      this._app = app;
      this._colours = app.palette.map(rgba);
      this._white = rgba("#ffffff");
      this._stamps = [];
    },
    onAdd: function (map) {
      this._map = map;
      this._canvas = L.DomUtil.create("canvas", "sc-points leaflet-zoom-hide");
      this._canvas.style.pointerEvents = "none";
      this._canvas.style.opacity = "0.85";
      map.getPanes().overlayPane.appendChild(this._canvas);
      map.on("moveend zoomend resize viewreset", this._view, this);
      this._view();
    },
    onRemove: function (map) {
      L.DomUtil.remove(this._canvas);
      map.off("moveend zoomend resize viewreset", this._view, this);
    },
    _view: function () {
      var map = this._map, app = this._app, n = app.n;
      var size = map.getSize(), topLeft = map.containerPointToLayerPoint([0, 0]);
      var ratio = window.devicePixelRatio || 1, c = this._canvas;
      L.DomUtil.setPosition(c, topLeft);
      var w = Math.round(size.x * ratio), h = Math.round(size.y * ratio);
      if (c.width !== w || c.height !== h || !this._img) {
        c.width = w;
        c.height = h;
        c.style.width = size.x + "px";
        c.style.height = size.y + "px";
        this._ctx = c.getContext("2d");
        this._img = this._ctx.createImageData(w, h);
        this._buf = new Uint32Array(this._img.data.buffer);
        this._stamps = [];
      }
      this._w = w;
      this._h = h;
      var scale = Math.pow(2, map.getZoom()), origin = map.getPixelOrigin();
      var ox = -origin.x - topLeft.x, oy = -origin.y - topLeft.y;
      var grow = Math.max(0.7, Math.min(1.6, (map.getZoom() - 11) / 4));
      var sx = this._sx || new Float32Array(n), sy = this._sy || new Float32Array(n);
      var rr = this._rr || new Float32Array(n), r = app.radius;
      var ix = this._ix || new Int32Array(n), iy = this._iy || new Int32Array(n);
      var ir = this._ir || new Int32Array(n);
      for (var i = 0; i < n; i++) {
        sx[i] = app.wx[i] * scale + ox;
        sy[i] = app.wy[i] * scale + oy;
        rr[i] = r[i] * grow;
        ix[i] = Math.round(sx[i] * ratio);
        iy[i] = Math.round(sy[i] * ratio);
        ir[i] = Math.max(1, Math.min(40, Math.round(rr[i] * ratio)));
      }
      this._sx = sx; this._sy = sy; this._rr = rr;
      this._ix = ix; this._iy = iy; this._ir = ir;
      this.redraw();
    },
    _stamp: function (r) {
      var st = this._stamps[r];
      if (st) return st;
      var w = this._w, fill = [], rim = [], fx = [], fy = [], rx = [], ry = [];
      for (var y = -r; y <= r; y++) {
        for (var x = -r; x <= r; x++) {
          var d = x * x + y * y;
          if (d > r * r + r * 0.5) continue;
          if (r >= 3 && d > (r - 1) * (r - 1) + (r - 1) * 0.5) {
            rim.push(y * w + x); rx.push(x); ry.push(y);
          } else {
            fill.push(y * w + x); fx.push(x); fy.push(y);
          }
        }
      }
      st = { fill: Int32Array.from(fill), rim: Int32Array.from(rim), fx: fx, fy: fy,
             rx: rx, ry: ry };
      this._stamps[r] = st;
      return st;
    },
    _disc: function (i, col) {
      var x = this._ix[i], y = this._iy[i], r = this._ir[i], w = this._w, h = this._h;
      if (x < -r || y < -r || x >= w + r || y >= h + r) return false;
      var st = this._stamp(r), buf = this._buf, white = this._white, j;
      if (x - r >= 0 && y - r >= 0 && x + r < w && y + r < h) {
        var base = y * w + x, f = st.fill, b = st.rim;
        for (j = 0; j < f.length; j++) buf[base + f[j]] = col;
        for (j = 0; j < b.length; j++) buf[base + b[j]] = white;
      } else {
        this._clipped(st.fx, st.fy, x, y, col);
        this._clipped(st.rx, st.ry, x, y, white);
      }
      return true;
    },
    redraw: function () {
      if (!this._img) return;
      var app = this._app, n = app.n, code = app.codes(), colours = this._colours;
      this._buf.fill(0);
      for (var o = 0; o < ORDER.length; o++) {
        var k = ORDER[o], col = colours[k];
        for (var i = 0; i < n; i++) if (code[i] === k) this._disc(i, col);
      }
      this._ctx.putImageData(this._img, 0, 0);
    },
    /* Redraw only these points (their class may have changed), on top of the others. */
    update: function (pts, from, to) {
      if (!this._img) return;
      var app = this._app, colours = this._colours, ix = this._ix, iy = this._iy;
      var ir = this._ir, x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
      for (var j = from; j < to; j++) {
        var i = pts[j];
        if (!this._disc(i, colours[app.code(i)])) continue;
        var r = ir[i] + 1;
        if (ix[i] - r < x0) x0 = ix[i] - r;
        if (iy[i] - r < y0) y0 = iy[i] - r;
        if (ix[i] + r > x1) x1 = ix[i] + r;
        if (iy[i] + r > y1) y1 = iy[i] + r;
      }
      if (x1 < x0) return;
      x0 = Math.max(0, x0); y0 = Math.max(0, y0);
      x1 = Math.min(this._w, x1 + 1); y1 = Math.min(this._h, y1 + 1);
      if (x1 > x0 && y1 > y0) this._ctx.putImageData(this._img, 0, 0, x0, y0, x1 - x0, y1 - y0);
    },
    _clipped: function (xs, ys, x, y, col) {
      var w = this._w, h = this._h, buf = this._buf;
      for (var j = 0; j < xs.length; j++) {
        var px = x + xs[j], py = y + ys[j];
        if (px >= 0 && py >= 0 && px < w && py < h) buf[py * w + px] = col;
      }
    },
    hit: function (p) {
      var best = -1, bestD = 1e9, sx = this._sx, sy = this._sy, rr = this._rr;
      if (!sx) return -1;
      for (var i = 0; i < this._app.n; i++) {
        var dx = sx[i] - p.x, dy = sy[i] - p.y, d = dx * dx + dy * dy;
        var lim = Math.max(6, rr[i] + 3);
        if (d < lim * lim && d < bestD) { best = i; bestD = d; }
      }
      return best;
    }
  });

  /* ------------------------------------------------------------------ markers */
  var KIND_COLOUR = { centre: "#b2182b", station: "#2166ac" };
  function siteLook(app, k) {
    var s = app.sites, on = app.chosen[k] === 1, role = s.role[k], kind = s.kinds[k];
    var colour = KIND_COLOUR[kind] || "#2166ac", css, symbol = "", size;
    if (role === 0) {
      size = kind === "centre" ? 22 : 16;
      symbol = kind === "centre" ? "★" : "●";
      css = "color:" + colour + ";font-size:" + size + "px;line-height:" + size + "px;" +
            "text-shadow:0 0 3px #fff";
    } else if (role === 1) {
      size = 22;
      symbol = String(s.rank[k] === null ? "" : s.rank[k]);
      css = "background:#ff7f00;color:#fff;border:2px solid " +
            (kind === "centre" ? "#b2182b" : "#fff") + ";border-radius:11px;line-height:18px;" +
            "box-shadow:0 0 3px #000";
    } else {
      size = on ? 16 : 12;
      symbol = on ? "+" : "";
      css = "border:2px solid " + (on ? "#fff" : kind === "centre" ? "#b2182b" : "#555") +
            ";border-radius:" + size / 2 + "px;line-height:" + (size - 4) + "px;color:#fff;" +
            "background:" + (on ? (kind === "centre" ? "#b2182b" : "#ff7f00") +
            ";box-shadow:0 0 3px #000" : "rgba(255,255,255,.6)");
    }
    var icon = role === 2 ? 16 : size, margin = (icon - size) / 2;
    return { size: icon, symbol: symbol, off: role < 2 && !on,
             css: css + ";width:" + size + "px;height:" + size + "px;margin:" + margin + "px" };
  }

  function effectLines(app, k) {
    var lines = [], on = app.chosen[k] === 1, pop = app.pop;
    app.tiers.forEach(function (T) {
      var a = T.off[k], b = T.off[k + 1];
      if (a === b && T.kinds.indexOf(app.sites.kinds[k]) < 0) return;
      var sum = 0;
      for (var j = a; j < b; j++) {
        var c = T.cnt[T.pts[j]];
        if (on ? c === 1 : c === 0) sum += pop[T.pts[j]];
      }
      lines.push(T.label + ": " + signed(on ? -sum : sum) + " " + app.text.residents);
    });
    return lines;
  }

  function tipNode(app, k) {
    var s = app.sites, t = app.text, role = s.role[k], on = app.chosen[k] === 1;
    var head = (s.names[k] || s.ids[k]) + " · " + (app.kindLabels[s.kinds[k]] || s.kinds[k]);
    var what = role === 0 ? t.existing : role === 1 ? t.proposal + " #" + s.rank[k] : t.candidate;
    var lines = [head, what + " · " + s.ids[k] + " · " + (on ? t.chosen : t.not_chosen),
                 (on ? t.remove : t.add) + ":"].concat(effectLines(app, k));
    return el("div", "sc-tip", lines.join("\n"));
  }

  /* ------------------------------------------------------------------ the panel */
  function panel(app) {
    var t = app.text, box = el("div", "sc-panel");
    box.id = "sc-panel";
    box.appendChild(el("h1", null, app.data.title));
    var table = el("table"), head = el("tr");
    [t.tier, t.covered, t.share, t.goal, t.result].forEach(function (h) {
      head.appendChild(el("th", null, h));
    });
    table.appendChild(head);
    app.cells = app.tiers.map(function (T) {
      var row = el("tr"), cells = [];
      row.appendChild(el("td", null, T.label + " ≤ " + num(T.target) + " m"));
      for (var i = 0; i < 4; i++) { var c = el("td"); cells.push(c); row.appendChild(c); }
      var sub = el("tr"), change = el("td");
      change.colSpan = 5;
      change.style.textAlign = "right";
      change.style.fontSize = "12px";
      sub.appendChild(change);
      table.appendChild(row);
      table.appendChild(sub);
      return { covered: cells[0], share: cells[1], goal: cells[2], result: cells[3], change: change };
    });
    box.appendChild(table);
    app.countLine = el("div", "sc-row");
    box.appendChild(app.countLine);
    var pick = el("div", "sc-row");
    pick.appendChild(document.createTextNode(t.colour_by + ": "));
    app.tiers.forEach(function (T, i) {
      var lab = el("label"), input = el("input");
      input.type = "radio";
      input.name = "sc-colour";
      input.checked = i === app.show;
      input.addEventListener("change", function () { app.api.colourBy(T.name); });
      lab.appendChild(input);
      lab.appendChild(document.createTextNode(T.label + " "));
      pick.appendChild(lab);
    });
    box.appendChild(pick);
    var keys = el("div", "sc-row");
    ["kept", "gained", "lost", "open", "unsnapped"].forEach(function (k) {
      var key = el("span", "sc-key");
      key.style.background = app.data.colours[k];
      keys.appendChild(key);
      keys.appendChild(document.createTextNode(t[k]));
    });
    box.appendChild(keys);
    var buttons = el("div", "sc-row");
    [["reset", function () { app.api.reset(); }],
     ["download_geojson", function () { app.api.download("geojson"); }],
     ["download_csv", function () { app.api.download("csv"); }]].forEach(function (b) {
      var button = el("button", null, t[b[0]]);
      button.id = "sc-" + b[0].replace("_", "-");
      button.type = "button";
      button.addEventListener("click", b[1]);
      buttons.appendChild(button);
    });
    box.appendChild(buttons);
    box.appendChild(el("div", "sc-note", t.hint));
    box.appendChild(el("div", "sc-note", t.attribution));
    L.DomEvent.disableClickPropagation(box);
    L.DomEvent.disableScrollPropagation(box);
    return box;
  }

  function refreshPanel(app) {
    var f = app.api.figures(), t = app.text;
    app.tiers.forEach(function (T, i) {
      var r = f[T.name], c = app.cells[i];
      c.covered.textContent = num(r.covered_residents) + " / " + num(r.residents);
      c.share.textContent = pct(r.share);
      c.goal.textContent = pct(r.goal, 0);
      c.result.textContent = r.pass === null ? "–" : r.pass ? "✓ " + t.pass : "✗ " + t.fail;
      c.result.className = r.pass ? "sc-pass" : "sc-fail";
      var dShare = r.share === null ? 0 : (r.covered_residents - T.start) / r.residents * 100;
      c.change.textContent = t.change + ": " + signed(r.covered_residents - T.start) + " " +
        t.residents + " (" + (Math.abs(dShare) < 0.05 ? "±" : dShare > 0 ? "+" : "−") +
        Math.abs(dShare).toFixed(1) + " pp)";
      c.change.className = r.covered_residents > T.start + 1e-9 ? "sc-up" :
        r.covered_residents < T.start - 1e-9 ? "sc-down" : "";
    });
    var on = [0, 0, 0], all = [0, 0, 0], s = app.sites;
    for (var k = 0; k < s.n; k++) { all[s.role[k]]++; on[s.role[k]] += app.chosen[k]; }
    app.countLine.textContent = [t.existing + " " + on[0] + "/" + all[0],
      t.proposal + " " + on[1] + "/" + all[1], t.candidate + " " + on[2] + "/" + all[2]]
      .join(" · ");
  }

  /* ------------------------------------------------------------------ downloads */
  function csvField(v) {
    var s = String(v);
    return /[",\r\n]/.test(s) || s !== s.trim() ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  function chosenGeoJSON(app) {
    var s = app.sites, feats = [];
    for (var k = 0; k < s.n; k++) {
      if (!app.chosen[k]) continue;
      feats.push({ type: "Feature",
                   properties: { id: s.ids[k], kind: s.kinds[k], name: s.names[k] || null },
                   geometry: { type: "Point", coordinates: [s.wlon[k], s.wlat[k]] } });
    }
    return JSON.stringify({ type: "FeatureCollection", features: feats });
  }
  function chosenCSV(app) {
    var s = app.sites, rows = ["id,kind,name,lon,lat"];
    for (var k = 0; k < s.n; k++) {
      if (!app.chosen[k]) continue;
      rows.push([s.ids[k], s.kinds[k], s.names[k], String(s.wlon[k]), String(s.wlat[k])]
        .map(csvField).join(","));
    }
    return "\ufeff" + rows.join("\r\n") + "\r\n";
  }
  function save(name, text, type) {
    var url = URL.createObjectURL(new Blob([text], { type: type }));
    var a = el("a");
    a.href = url;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(url); a.remove(); }, 2000);
  }

  /* ------------------------------------------------------------------ init */
  function init(map, data) {
    var res = data.residents, n = res.n, S = data.sites.n;
    var dx = decode(res.dx, Float32Array), dy = decode(res.dy, Float32Array);
    var pop = decode(res.pop, res.pop_dtype === "float64" ? Float64Array : Float32Array);
    var unsnapped = new Uint8Array(n);
    decode(res.unsnapped, Int32Array).forEach(function (i) { unsnapped[i] = 1; });
    var wx = new Float64Array(n), wy = new Float64Array(n), radius = new Float32Array(n);
    var lon0 = data.origin[0], lat0 = data.origin[1];
    for (var i = 0; i < n; i++) {
      var p = L.CRS.EPSG3857.latLngToPoint(L.latLng(lat0 + dy[i], lon0 + dx[i]), 0);
      wx[i] = p.x;
      wy[i] = p.y;
      radius[i] = Math.min(14, Math.max(3, Math.sqrt(Math.max(pop[i], 0)) / 3));
    }
    var app = {
      data: data, text: data.text, kindLabels: data.kind_labels, n: n, pop: pop, wx: wx, wy: wy,
      radius: radius, sites: data.sites, chosen: new Uint8Array(S), show: data.tiers.length - 1,
      palette: ["kept", "gained", "lost", "open", "unsnapped"].map(function (k) {
        return data.colours[k];
      }),
      tiers: data.tiers.map(function (spec) { return tierState(spec, S, n); }),
      markers: [], looks: []
    };
    var index = new Map();
    data.sites.ids.forEach(function (id, k) { index.set(id, k); });
    var codes = new Uint8Array(n);
    app.code = function (i) {
      var T = app.tiers[app.show];
      if (unsnapped[i]) return 4;
      return T.cnt[i] > 0 ? (T.startCov[i] ? 0 : 1) : (T.startCov[i] ? 2 : 3);
    };
    app.codes = function () {
      var T = app.tiers[app.show];
      if (!T) { codes.fill(3); return codes; }
      var cnt = T.cnt, st = T.startCov;
      for (var i = 0; i < n; i++) {
        codes[i] = unsnapped[i] ? 4 : cnt[i] > 0 ? (st[i] ? 0 : 1) : (st[i] ? 2 : 3);
      }
      return codes;
    };
    function apply(k, delta) {
      app.tiers.forEach(function (T) {
        var pts = T.pts, cnt = T.cnt;
        for (var j = T.off[k], end = T.off[k + 1]; j < end; j++) cnt[pts[j]] += delta;
      });
    }
    function covered(T) {
      var sum = 0, cnt = T.cnt;
      for (var i = 0; i < n; i++) if (cnt[i] > 0) sum += pop[i];
      return sum;
    }
    function setStart() {
      app.chosen.fill(0);
      app.tiers.forEach(function (T) { T.cnt.fill(0); });
      for (var k = 0; k < S; k++) {
        if (data.sites.role[k] < 2) { app.chosen[k] = 1; apply(k, 1); }
      }
    }
    setStart();
    app.tiers.forEach(function (T) {
      for (var i = 0; i < n; i++) T.startCov[i] = T.cnt[i] > 0 ? 1 : 0;
      T.start = covered(T);
    });

    if (data.attribution_only) map.attributionControl.addAttribution(data.attribution_only);
    var outline = L.geoJSON(data.boundary, {
      style: { color: "#333333", weight: 2, fill: false, dashArray: "6 4" }, interactive: false
    }).addTo(map);
    // keep the area clear of the panel on the right
    if (outline.getBounds().isValid()) {
      map.fitBounds(outline.getBounds(), { paddingTopLeft: [20, 20],
                                           paddingBottomRight: [430, 20], animate: false });
    }
    var layer = new Residents(app);

    function render(k) {
      var look = siteLook(app, k), box = app.looks[k];
      box.style.cssText = look.css;
      box.className = "sc-site sc-" + ["existing", "proposal", "candidate"][data.sites.role[k]] +
        (look.off ? " sc-off" : "") + (app.chosen[k] ? " sc-chosen" : "");
      box.textContent = look.symbol;
      var m = app.markers[k];
      if (m.isTooltipOpen()) m.getTooltip().update();
    }
    function site(id) {
      var k = index.get(String(id));
      if (k === undefined) throw new Error("no site with id " + JSON.stringify(String(id)));
      return k;
    }
    var api = {
      map: map, data: data, ready: null, painted: null, last: null,
      toggle: function (id) {
        var k = site(id), t0 = performance.now();
        app.chosen[k] ^= 1;
        apply(k, app.chosen[k] ? 1 : -1);
        render(k);
        refreshPanel(app);
        var T = app.tiers[app.show];
        if (T) layer.update(T.pts, T.off[k], T.off[k + 1]);
        api.last = performance.now() - t0;
        return app.chosen[k] === 1;
      },
      chosen: function () {
        var out = [];
        for (var k = 0; k < S; k++) if (app.chosen[k]) out.push(data.sites.ids[k]);
        return out;
      },
      figures: function () {
        var out = {};
        app.tiers.forEach(function (T) {
          var cov = covered(T), total = res.total, share = total > 0 ? cov / total : null;
          out[T.name] = {
            covered_residents: cov, residents: total, share: share, goal: T.goal,
            pass: share === null ? null : share + 1e-12 >= T.goal,
            start_covered_residents: T.start, change_residents: cov - T.start
          };
        });
        return out;
      },
      reset: function () {
        setStart();
        for (var k = 0; k < S; k++) render(k);
        refreshPanel(app);
        layer.redraw();
      },
      isChosen: function (id) { return app.chosen[site(id)] === 1; },
      index: site,
      sites: function () {
        return data.sites.ids.map(function (id, k) {
          return { id: id, kind: data.sites.kinds[k], role: ["existing", "proposal",
                   "candidate"][data.sites.role[k]], chosen: app.chosen[k] === 1 };
        });
      },
      tip: function (id) { return tipNode(app, site(id)).textContent; },
      colourBy: function (name) {
        var t = app.tiers.map(function (T) { return T.name; }).indexOf(name);
        if (t < 0) throw new Error("no tier " + JSON.stringify(String(name)));
        app.show = t;
        layer.redraw();
      },
      geojson: function () { return chosenGeoJSON(app); },
      csv: function () { return chosenCSV(app); },
      download: function (what) {
        if (what === "csv") save("whatif_chosen.csv", chosenCSV(app), "text/csv;charset=utf-8");
        else save("whatif_chosen.geojson", chosenGeoJSON(app), "application/geo+json");
      },
      nearest: function (i, t) { return nearest(app, i, app.tiers[t]); }
    };
    app.api = api;
    for (var k = 0; k < S; k++) {
      (function (k) {
        var box = el("div", "sc-site");
        box.setAttribute("data-sc-site", String(k));
        app.looks[k] = box;
        var look = siteLook(app, k), role = data.sites.role[k];
        var m = L.marker([data.sites.lat[k], data.sites.lon[k]], {
          icon: L.divIcon({ html: box, className: "", iconSize: [look.size, look.size],
                            iconAnchor: [look.size / 2, look.size / 2] }),
          keyboard: false, zIndexOffset: role === 1 ? 2000 : role === 0 ? 1000 : 0
        });
        m.bindTooltip(function () { return tipNode(app, k); }, { direction: "top" });
        m.on("click", function () { api.toggle(data.sites.ids[k]); });
        app.markers[k] = m;
      })(k);
    }
    app.markers.forEach(function (m, k) { m.addTo(map); render(k); });
    layer.addTo(map);
    map.on("click", function (e) {
      var i = layer.hit(e.containerPoint);
      if (i >= 0) {
        L.popup().setLatLng([lat0 + dy[i], lon0 + dx[i]]).setContent(residentNode(app, i))
          .openOn(map);
      }
    });
    map.getContainer().appendChild(panel(app));
    refreshPanel(app);
    document.title = data.title;
    window.servicecircleWhatIf = api;
    api.ready = performance.now();
    // the first frame on screen (residents, markers and panel painted)
    requestAnimationFrame(function () {
      requestAnimationFrame(function () { api.painted = performance.now(); });
    });
    return api;
  }

  function nearest(app, i, T) {
    var best = Infinity, who = -1;
    for (var k = 0; k < app.sites.n; k++) {
      if (!app.chosen[k]) continue;
      var lo = T.off[k], hi = T.off[k + 1] - 1;
      while (lo <= hi) {
        var mid = (lo + hi) >> 1, v = T.pts[mid];
        if (v === i) {
          var w = T.walk[mid] * T.unit;
          if (w < best) { best = w; who = k; }
          break;
        }
        if (v < i) lo = mid + 1; else hi = mid - 1;
      }
    }
    return { walk_m: who < 0 ? null : best, site: who < 0 ? null : app.sites.ids[who] };
  }

  function residentNode(app, i) {
    var t = app.text, s = app.sites, table = el("table", "sc-popup");
    var rows = [[t.id, app.data.residents.ids[i]], [t.residents, num(app.pop[i])]];
    app.tiers.forEach(function (T) {
      var r = nearest(app, i, T), k = r.site === null ? -1 : s.ids.indexOf(r.site);
      rows.push([T.label, k < 0 ? t.none_within.replace("{m}", num(T.target)) :
                 num(r.walk_m) + " m · " + (s.names[k] || s.ids[k])]);
    });
    rows.forEach(function (r) {
      var tr = el("tr");
      tr.appendChild(el("th", null, r[0]));
      tr.appendChild(el("td", null, r[1]));
      table.appendChild(tr);
    });
    return table;
  }

  window.servicecircleWhatIfInit = init;
})();
