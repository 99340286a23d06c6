/* servicecircle map page: draws the layers described by the page's JSON data.
 *
 * Every user string (ids, names, kinds, cell codes, tier names, file names) reaches the DOM
 * through textContent only; the few Leaflet APIs that take HTML (layer-control names) get
 * escaped text. Residents are drawn on one canvas per layer from typed arrays (no object per
 * point); above a threshold they are shown as hex cells at low zoom and as points when zoomed in.
 * window.servicecircleMap exposes the layers and popup texts to tests and scripts.
 */
(function () {
  "use strict";

  function decode(text, Type) {
    if (!text) return new Type(0);
    var bin = atob(text), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Type(bytes.buffer);
  }
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function table(rows) {
    var t = el("table", "sc-popup");
    rows.forEach(function (r) {
      var tr = el("tr");
      tr.appendChild(el("th", null, r[0]));
      tr.appendChild(el("td", null, r[1]));
      t.appendChild(tr);
    });
    return t;
  }
  function fmt(v, digits) {
    if (v === null || v === undefined || (typeof v === "number" && !isFinite(v))) return "–";
    if (typeof v === "number") {
      return v.toLocaleString("en-US", { maximumFractionDigits: digits || 0 });
    }
    return String(v);
  }

  /* ------------------------------------------------------------------ residents on canvas */
  var CanvasPoints = L.Layer.extend({
    initialize: function (set, layer) {
      this._set = set;
      this._layer = layer;
    },
    onAdd: function (map) {
      this._map = map;
      this._canvas = L.DomUtil.create("canvas", "sc-points leaflet-zoom-hide");
      this._canvas.style.pointerEvents = "none";
      map.getPanes().overlayPane.appendChild(this._canvas);
      map.on("moveend zoomend resize viewreset", this._redraw, this);
      this._redraw();
    },
    onRemove: function (map) {
      L.DomUtil.remove(this._canvas);
      map.off("moveend zoomend resize viewreset", this._redraw, this);
      this._sx = null;
    },
    visible: function () {
      return !!this._map && this._set.minZoom <= this._map.getZoom();
    },
    _redraw: function () {
      var map = this._map, set = this._set, layer = this._layer;
      var size = map.getSize(), c = this._canvas, ratio = window.devicePixelRatio || 1;
      var topLeft = map.containerPointToLayerPoint([0, 0]);
      L.DomUtil.setPosition(c, topLeft);
      c.width = size.x * ratio;
      c.height = size.y * ratio;
      c.style.width = size.x + "px";
      c.style.height = size.y + "px";
      var ctx = c.getContext("2d");
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, size.x, size.y);
      if (!this.visible()) { this._sx = null; return; }
      var scale = Math.pow(2, map.getZoom());
      var origin = map.getPixelOrigin();
      var ox = -origin.x - topLeft.x, oy = -origin.y - topLeft.y;
      var n = set.n, sx = new Float32Array(n), sy = new Float32Array(n);
      var wx = set.wx, wy = set.wy, r = set.radius, code = layer.code, pal = layer.palette;
      var grow = Math.max(0.7, Math.min(1.6, (map.getZoom() - 11) / 4));
      for (var k = 0; k < pal.length; k++) {
        ctx.fillStyle = pal[k].colour;
        ctx.strokeStyle = "#ffffff";
        ctx.lineWidth = 0.8;
        ctx.globalAlpha = 0.85;
        ctx.beginPath();
        for (var i = 0; i < n; i++) {
          var x = wx[i] * scale + ox, y = wy[i] * scale + oy;
          sx[i] = x;
          sy[i] = y;
          if (code[i] !== k || x < -20 || y < -20 || x > size.x + 20 || y > size.y + 20) continue;
          var rr = r[i] * grow;
          ctx.moveTo(x + rr, y);
          ctx.arc(x, y, rr, 0, 2 * Math.PI);
        }
        ctx.fill();
        ctx.stroke();
      }
      this._sx = sx;
      this._sy = sy;
    },
    hit: function (point) {
      if (!this._sx) return -1;
      var best = -1, bestD = 1e9, sx = this._sx, sy = this._sy, r = this._set.radius;
      for (var i = 0; i < this._set.n; i++) {
        var dx = sx[i] - point.x, dy = sy[i] - point.y, d = dx * dx + dy * dy;
        var lim = Math.max(6, r[i] + 3);
        if (d < lim * lim && d < bestD) { best = i; bestD = d; }
      }
      return best;
    }
  });

  function residentSet(data) {
    var res = data.residents, n = res.n;
    var dx = decode(res.dx, Float32Array), dy = decode(res.dy, Float32Array);
    var pop = decode(res.pop, Float32Array);
    var wx = new Float64Array(n), wy = new Float64Array(n), radius = new Float32Array(n);
    var lon0 = data.origin[0], lat0 = data.origin[1];
    for (var i = 0; i < n; i++) {
      var p = L.CRS.EPSG3857.latLngToPoint(L.latLng(lat0 + dy[i], lon0 + dx[i]), 0);
      wx[i] = p.x;
      wy[i] = p.y;
      radius[i] = Math.min(14, Math.max(3, Math.sqrt(Math.max(pop[i], 0)) / 3));
    }
    return {
      n: n, wx: wx, wy: wy, pop: pop, radius: radius, ids: res.ids, names: res.names || null,
      lon: function (i) { return lon0 + dx[i]; }, lat: function (i) { return lat0 + dy[i]; },
      minZoom: data.aggregate ? data.aggregate.min_zoom : 0
    };
  }

  function prepareLayer(spec) {
    var out = { name: spec.name, show: spec.show, palette: spec.palette, fields: [] };
    out.code = decode(spec.code, Uint8Array);
    spec.fields.forEach(function (f) {
      var g = { label: f.label, type: f.type, digits: f.digits || 0, names: f.names || null };
      if (f.type === "number") g.data = decode(f.data, Float32Array);
      else if (f.type === "ref") g.data = decode(f.data, Int32Array);
      else if (f.type === "text") g.data = f.data;
      out.fields.push(g);
    });
    return out;
  }

  function residentRows(set, layer, i, text) {
    var rows = [["id", set.ids[i]], [text.residents, fmt(set.pop[i], 0)]];
    if (set.names && set.names[i]) rows.unshift([text.name, set.names[i]]);
    rows.push([layer.name, layer.palette[layer.code[i]].label]);
    layer.fields.forEach(function (f) {
      var v;
      if (f.type === "number") v = fmt(f.data[i], f.digits);
      else if (f.type === "ref") v = f.data[i] >= 0 ? f.names[f.data[i]] : "–";
      else v = f.data[i] || "–";
      rows.push([f.label, v]);
    });
    return rows;
  }

  /* ------------------------------------------------------------------ other layers */
  function polygonLayer(spec, renderer, pick) {
    return L.geoJSON(spec.geojson, {
      renderer: renderer,
      style: function (f) {
        var p = f.properties || {}, s = spec.style || {};
        return {
          color: s.color || "#666666",
          weight: s.weight === undefined ? 1 : s.weight,
          fill: s.fill !== false,
          fillColor: p._c || s.fillColor || "#1f78b4",
          fillOpacity: s.fillOpacity === undefined ? 0.45 : s.fillOpacity,
          dashArray: s.dashArray || null
        };
      },
      onEachFeature: function (f, layer) {
        if (!spec.fields || !spec.fields.length) return;
        layer.scPopup = function () {
          var p = f.properties || {};
          return table(spec.fields.map(function (fd) { return [fd[0], fmt(p[fd[1]], 0)]; }));
        };
        // a resident drawn over the polygon takes the click (the map's handler opens it)
        layer.on("click", function (e) {
          if (pick && pick(e.containerPoint)) return;
          L.popup().setLatLng(e.latlng).setContent(layer.scPopup()).openOn(layer._map);
        });
      }
    });
  }

  function markerIcon(style, label) {
    var box = el("div", "sc-marker sc-" + style.cls);
    box.style.cssText = style.css;
    box.textContent = label;
    return L.divIcon({ html: box, className: "", iconSize: [style.size, style.size],
                       iconAnchor: [style.size / 2, style.size / 2] });
  }

  function markerLayer(spec, styles) {
    var group = L.featureGroup();
    spec.items.forEach(function (it) {
      var style = styles[it.style] || styles.poi;
      var m = L.marker([it.lat, it.lon], { icon: markerIcon(style, it.symbol || style.symbol),
                                           keyboard: false });
      var tip = el("div", "sc-tip");
      tip.textContent = it.tip;
      m.bindTooltip(tip, { direction: "top" });
      if (it.rows) m.bindPopup(table(it.rows));
      m.scTip = it.tip;
      group.addLayer(m);
    });
    return group;
  }

  function streetLayer(spec, renderer) {
    var dx = decode(spec.dx, Float32Array), dy = decode(spec.dy, Float32Array);
    var starts = decode(spec.starts, Int32Array), lines = [];
    for (var e = 0; e + 1 < starts.length; e++) {
      var line = [];
      for (var i = starts[e]; i < starts[e + 1]; i++) {
        line.push([spec.origin[1] + dy[i], spec.origin[0] + dx[i]]);
      }
      lines.push(line);
    }
    return L.polyline(lines, { color: "#8c8c8c", weight: 1, opacity: 0.7, interactive: false,
                               renderer: renderer });
  }

  function circleLayer(spec, renderer) {
    var group = L.featureGroup();
    spec.points.forEach(function (p) {
      group.addLayer(L.circle(p, { radius: spec.radius, color: "#555555", weight: 1,
                                   dashArray: "4 4", fill: false, renderer: renderer }));
    });
    return group;
  }

  /* ------------------------------------------------------------------ legend and title */
  function legend(data) {
    var box = el("div", "sc-legend");
    box.id = "sc-legend";
    box.appendChild(el("b", null, data.text.legend));
    data.legend.forEach(function (row) {
      var line = el("div");
      var key = el("span", "sc-key");
      if (row.symbol) {
        key.textContent = row.symbol;
        key.style.color = row.colour;
      } else {
        key.style.background = row.colour;
        key.style.borderRadius = row.square ? "0" : "6px";
      }
      line.appendChild(key);
      line.appendChild(document.createTextNode(row.label));
      box.appendChild(line);
    });
    if (data.ramp) {
      var ramp = el("div", "sc-ramp");
      ramp.appendChild(el("div", null, data.ramp.label));
      ramp.appendChild(document.createTextNode("0% "));
      data.ramp.colours.forEach(function (c) {
        var b = el("span", "sc-box");
        b.style.background = c;
        ramp.appendChild(b);
      });
      ramp.appendChild(document.createTextNode(" 100%"));
      box.appendChild(ramp);
    }
    box.appendChild(el("div", "sc-note", data.text.attribution));
    return box;
  }

  /* The whole area in view, between the legend (bottom left) and the open layer panel (top
     right) when it fits there at the zoom it would have on the whole map, else on the whole
     map. */
  function fitBeside(map, b, left, right) {
    var bounds = L.latLngBounds([[b[1], b[0]], [b[3], b[2]]]);
    var beside = map.getBoundsZoom(bounds, false, L.point(left + right + 40, 0)) >=
      map.getBoundsZoom(bounds, false);
    map.fitBounds(bounds, {
      paddingTopLeft: beside ? [left + 20, 0] : [0, 0],
      paddingBottomRight: beside ? [right + 20, 0] : [0, 0],
      animate: false
    });
    return beside;
  }

  function init(map, data) {
    var canvas = L.canvas({ padding: 0.3 });
    var api = { map: map, layers: {}, overlays: [], data: data };
    var overlays = {};
    function add(key, name, layer, show) {
      api.layers[key] = layer;
      overlays[esc(name)] = layer;
      api.overlays.push(name);
      if (show) layer.addTo(map);
    }
    if (data.attribution_only) map.attributionControl.addAttribution(data.attribution_only);
    if (data.streets) {  // shown without tiles, and as soon as a tile fails to load (offline)
      var streets = streetLayer(data.streets, canvas);
      add("streets", data.text.streets, streets, !!data.attribution_only);
      map.eachLayer(function (l) {
        if (l instanceof L.TileLayer) {
          l.once("tileerror", function () { if (!map.hasLayer(streets)) streets.addTo(map); });
        }
      });
    }
    add("boundary", data.text.boundary, L.geoJSON(data.boundary, {
      style: { color: "#333333", weight: 2, fill: false, dashArray: "6 4" }, interactive: false
    }), true);
    var pointLayers = [];
    function residentAt(point) {
      for (var k = pointLayers.length - 1; k >= 0; k--) {
        var pl = pointLayers[k];
        if (!map.hasLayer(pl.group) || !pl.pts.visible()) continue;
        var i = pl.pts.hit(point);
        if (i >= 0) return { k: k, i: i };
      }
      return null;
    }
    (data.polygons || []).forEach(function (spec, k) {
      var layer = polygonLayer(spec, canvas, residentAt);
      if (spec.min_zoom) {  // e.g. micro-grids: only when zoomed in
        var group = L.layerGroup();
        var inner = layer;
        var show = function () {
          if (!map.hasLayer(group)) return;
          var near = map.getZoom() >= spec.min_zoom;
          if (near && !group.hasLayer(inner)) group.addLayer(inner);
          if (!near && group.hasLayer(inner)) group.removeLayer(inner);
        };
        map.on("zoomend", show);
        group.on("add", show);
        layer = group;
      }
      add("polygons:" + k, spec.name, layer, spec.show);
    });
    (data.circles || []).forEach(function (spec, k) {
      add("circles:" + k, spec.name, circleLayer(spec, canvas), spec.show);
    });
    var set = data.residents ? residentSet(data) : null;
    (data.resident_layers || []).forEach(function (spec, k) {
      var layer = prepareLayer(spec);
      var pts = new CanvasPoints(set, layer);
      var group = L.layerGroup([pts]);
      if (spec.markers) group.addLayer(markerLayer({ items: spec.markers }, data.marker_styles));
      if (data.aggregate) {
        var agg = data.aggregate, shares = decode(agg.shares[k], Float32Array);
        var feats = agg.cells.features.map(function (f, j) {
          var s = shares[j], c = isFinite(s) ? agg.ramp[Math.min(4, Math.floor(s * 5))] : "#bbbbbb";
          return { type: "Feature", geometry: f.geometry,
                   properties: { pop: f.properties.pop, share: isFinite(s) ? Math.round(s * 100) + "%" : "–", _c: c } };
        });
        var cells = polygonLayer({ geojson: { type: "FeatureCollection", features: feats },
                                   style: { color: "#888888", weight: 0.5, fillOpacity: 0.6 },
                                   fields: [[data.text.residents, "pop"], [spec.name, "share"]] },
                                 canvas, null);
        var switcher = function () {
          if (!map.hasLayer(group)) return;
          var low = map.getZoom() < agg.min_zoom;
          if (low && !group.hasLayer(cells)) group.addLayer(cells);
          if (!low && group.hasLayer(cells)) group.removeLayer(cells);
        };
        map.on("zoomend", switcher);
        group.on("add", switcher);
      }
      pointLayers.push({ pts: pts, group: group, layer: layer });
      add("residents:" + k, spec.name, group, spec.show);
    });
    (data.markers || []).forEach(function (spec, k) {
      add("markers:" + k, spec.name, markerLayer(spec, data.marker_styles), spec.show);
    });
    var control = L.control.layers(null, overlays, { collapsed: false }).addTo(map);
    map.on("click", function (e) {
      var hit = residentAt(e.containerPoint);
      if (hit) {
        L.popup().setLatLng([set.lat(hit.i), set.lon(hit.i)])
          .setContent(table(residentRows(set, pointLayers[hit.k].layer, hit.i, data.text)))
          .openOn(map);
      }
    });
    var title = el("div", "sc-title", data.title);
    title.id = "sc-title";
    map.getContainer().appendChild(title);
    var key = legend(data);
    map.getContainer().appendChild(key);
    if (data.bounds && !fitBeside(map, data.bounds, key.offsetWidth,
                                  control.getContainer().offsetWidth)) {
      // no room beside the open panel (a small screen, a wide area): the panel folded into
      // its button (open on hover or tap), and the area fitted again beside that
      map.removeControl(control);
      control = L.control.layers(null, overlays, { collapsed: true }).addTo(map);
      fitBeside(map, data.bounds, key.offsetWidth, control.getContainer().offsetWidth);
    }
    api.residentPopup = function (k, i) {
      return residentRows(set, pointLayers[k].layer, i, data.text).map(function (r) {
        return r[0] + ": " + r[1];
      }).join("\n");
    };
    api.openResidentPopup = function (k, i) {
      var node = table(residentRows(set, pointLayers[k].layer, i, data.text));
      L.popup().setLatLng([set.lat(i), set.lon(i)]).setContent(node).openOn(map);
      return node.textContent;
    };
    api.polygonPopups = function () {
      var out = [];
      Object.keys(api.layers).forEach(function (key) {
        var layer = api.layers[key];
        if (!layer.eachLayer) return;
        layer.eachLayer(function (f) {
          var walk = function (g) {
            if (g.scPopup) {
              var node = g.scPopup();
              L.popup().setLatLng(g.getBounds().getCenter()).setContent(node).openOn(map);
              out.push(node.textContent);
            }
            if (g.eachLayer) g.eachLayer(walk);
          };
          walk(f);
        });
      });
      map.closePopup();
      return out;
    };
    api.pointsDrawn = function (k) {
      return !!pointLayers[k] && map.hasLayer(pointLayers[k].group) && pointLayers[k].pts.visible();
    };
    api.painted = performance.now();  // every layer added and drawn once (for benchmarks)
    window.servicecircleMap = api;
    return api;
  }

  window.servicecircleMapInit = init;
})();
