/*
 * Differential Diffusion, browser side: the pure part (no DOM), shared by the map editor and the run preview and
 * unit-tested with `node --test tests/js`. Everything lives on one namespace object, `DiffDiff`.
 *
 * A change map is a `GreyMap`: width x height bytes, 0 = keep (black), 255 = full change (white), row-major, the
 * init image's size. It is turned into a PNG by the DOM glue and read by the server exactly like an uploaded map.
 */
(function(root) {
    "use strict";
    var DiffDiff = root.DiffDiff = root.DiffDiff || {};

    function clampByte(v) {
        return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
    }

    function clamp01(v) {
        return v <= 0 ? 0 : v >= 1 ? 1 : v;
    }

    /** A grey change map of the init image's size. */
    function GreyMap(width, height, data) {
        if (!(width > 0 && height > 0) || width !== Math.floor(width) || height !== Math.floor(height)) {
            throw new RangeError("a change map needs a positive whole size, got " + width + "x" + height);
        }
        this.width = width;
        this.height = height;
        this.data = data || new Uint8ClampedArray(width * height);
        if (this.data.length !== width * height) {
            throw new RangeError("map data has " + this.data.length + " values for " + width + "x" + height);
        }
    }
    GreyMap.prototype.get = function(x, y) {
        return this.data[y * this.width + x];
    };
    GreyMap.prototype.clone = function() {
        return new GreyMap(this.width, this.height, new Uint8ClampedArray(this.data));
    };
    GreyMap.prototype.equals = function(other) {
        if (!other || other.width !== this.width || other.height !== this.height) return false;
        for (var i = 0; i < this.data.length; i++) if (this.data[i] !== other.data[i]) return false;
        return true;
    };
    /** The value at (x, y), for the picker; null outside the map. */
    GreyMap.prototype.pick = function(x, y) {
        x = Math.floor(x);
        y = Math.floor(y);
        if (x < 0 || y < 0 || x >= this.width || y >= this.height) return null;
        return this.get(x, y);
    };
    GreyMap.prototype.fill = function(value) {
        this.data.fill(clampByte(value));
        return this;
    };
    GreyMap.prototype.invert = function() {
        for (var i = 0; i < this.data.length; i++) this.data[i] = 255 - this.data[i];
        return this;
    };
    /** RGBA pixels (grey, opaque) for a canvas ImageData. */
    GreyMap.prototype.toRGBA = function(out) {
        out = out || new Uint8ClampedArray(this.data.length * 4);
        for (var i = 0, j = 0; i < this.data.length; i++, j += 4) {
            out[j] = out[j + 1] = out[j + 2] = this.data[i];
            out[j + 3] = 255;
        }
        return out;
    };
    /** A map from RGBA pixels, read as the server reads an uploaded map: luminance (Rec. 601) times alpha. */
    GreyMap.fromRGBA = function(width, height, rgba) {
        var map = new GreyMap(width, height);
        for (var i = 0, j = 0; i < map.data.length; i++, j += 4) {
            var lum = 0.299 * rgba[j] + 0.587 * rgba[j + 1] + 0.114 * rgba[j + 2];
            map.data[i] = clampByte(lum * rgba[j + 3] / 255);
        }
        return map;
    };
    /** A map from the alpha channel of RGBA pixels: an inpaint mask layer (painted = white). */
    GreyMap.fromAlpha = function(width, height, rgba) {
        var map = new GreyMap(width, height);
        for (var i = 0; i < map.data.length; i++) map.data[i] = rgba[i * 4 + 3];
        return map;
    };
    /** This map resampled to another size (bilinear, pixel centres aligned), for "rescale" after a size change. */
    GreyMap.prototype.resized = function(width, height) {
        var out = new GreyMap(width, height);
        var sx = this.width / width, sy = this.height / height;
        for (var y = 0; y < height; y++) {
            var fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), this.height - 1);
            var y0 = Math.floor(fy), y1 = Math.min(y0 + 1, this.height - 1), wy = fy - y0;
            for (var x = 0; x < width; x++) {
                var fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), this.width - 1);
                var x0 = Math.floor(fx), x1 = Math.min(x0 + 1, this.width - 1), wx = fx - x0;
                var top = this.get(x0, y0) * (1 - wx) + this.get(x1, y0) * wx;
                var bottom = this.get(x0, y1) * (1 - wx) + this.get(x1, y1) * wx;
                out.data[y * width + x] = clampByte(top * (1 - wy) + bottom * wy);
            }
        }
        return out;
    };
    DiffDiff.GreyMap = GreyMap;
    DiffDiff.clampByte = clampByte;

    /**
     * Brush opacity at distance d from the dab's centre: 1 out to hardness * radius, then a smooth (cosine)
     * falloff to 0 at the radius. hardness 1 = a hard disc (anti-aliased over one pixel), 0 = soft all the way.
     */
    function brushAlpha(d, radius, hardness) {
        if (d >= radius + 0.5) return 0;
        var inner = clamp01(hardness) * radius;
        if (d <= inner) return hardness >= 1 ? clamp01(radius + 0.5 - d) : 1;
        var span = Math.max(radius - inner, 0.5);
        return 0.5 + 0.5 * Math.cos(Math.PI * clamp01((d - inner) / span));
    }
    DiffDiff.brushAlpha = brushAlpha;

    /**
     * One brush or eraser stroke: dabs along the pointer's path paint `value` with the brush's opacity. Opacity is
     * the maximum over the stroke's dabs (not summed), so going over the same spot twice in one stroke does not
     * darken it, and the stroke's result depends on its path only: base + (value - base) * alpha.
     */
    function Stroke(map, value, radius, hardness) {
        if (!(radius > 0)) throw new RangeError("brush size must be positive, got " + radius);
        this.map = map;
        this.base = new Uint8ClampedArray(map.data);
        this.alpha = new Float32Array(map.data.length);
        this.value = clampByte(value);
        this.radius = radius;
        this.hardness = clamp01(hardness);
        this.last = null;
    }
    Stroke.prototype.dab = function(cx, cy) {
        var map = this.map, r = this.radius + 1;
        var x0 = Math.max(0, Math.floor(cx - r)), x1 = Math.min(map.width - 1, Math.ceil(cx + r));
        var y0 = Math.max(0, Math.floor(cy - r)), y1 = Math.min(map.height - 1, Math.ceil(cy + r));
        for (var y = y0; y <= y1; y++) {
            for (var x = x0; x <= x1; x++) {
                var a = brushAlpha(Math.hypot(x + 0.5 - cx, y + 0.5 - cy), this.radius, this.hardness);
                var i = y * map.width + x;
                if (a > this.alpha[i]) {
                    this.alpha[i] = a;
                    map.data[i] = clampByte(this.base[i] + (this.value - this.base[i]) * a);
                }
            }
        }
    };
    /** Continue the stroke to (x, y), with dabs a quarter of the radius apart so the line has no gaps. */
    Stroke.prototype.to = function(x, y) {
        if (this.last === null) {
            this.dab(x, y);
        } else {
            var dx = x - this.last[0], dy = y - this.last[1];
            var n = Math.max(1, Math.ceil(Math.hypot(dx, dy) / Math.max(this.radius / 4, 0.5)));
            for (var k = 1; k <= n; k++) this.dab(this.last[0] + dx * k / n, this.last[1] + dy * k / n);
        }
        this.last = [x, y];
        return this;
    };
    DiffDiff.Stroke = Stroke;

    /** Linear gradient: `from` at (x0, y0), `to` at (x1, y1), constant beyond the ends (as image editors do). */
    function linearGradient(map, x0, y0, x1, y1, from, to) {
        var dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
        for (var y = 0; y < map.height; y++) {
            for (var x = 0; x < map.width; x++) {
                var t = len2 > 0 ? clamp01(((x + 0.5 - x0) * dx + (y + 0.5 - y0) * dy) / len2) : 1;
                map.data[y * map.width + x] = clampByte(from + (to - from) * t);
            }
        }
        return map;
    }
    DiffDiff.linearGradient = linearGradient;

    /** Radial gradient: `from` at the centre (cx, cy), `to` at the distance of (ex, ey) and beyond. */
    function radialGradient(map, cx, cy, ex, ey, from, to) {
        var radius = Math.hypot(ex - cx, ey - cy);
        for (var y = 0; y < map.height; y++) {
            for (var x = 0; x < map.width; x++) {
                var t = radius > 0 ? clamp01(Math.hypot(x + 0.5 - cx, y + 0.5 - cy) / radius) : 1;
                map.data[y * map.width + x] = clampByte(from + (to - from) * t);
            }
        }
        return map;
    }
    DiffDiff.radialGradient = radialGradient;

    /**
     * Bucket fill: the 4-connected region around (x, y) whose values lie within `tolerance` of the value there
     * becomes `value`. Returns the number of pixels filled. Iterative (no recursion), so large regions are safe.
     */
    function floodFill(map, x, y, value, tolerance) {
        x = Math.floor(x);
        y = Math.floor(y);
        if (x < 0 || y < 0 || x >= map.width || y >= map.height) return 0;
        tolerance = tolerance || 0;
        value = clampByte(value);
        var w = map.width, data = map.data, seed = data[y * w + x];
        var seen = new Uint8Array(data.length);
        var stack = [y * w + x], filled = 0;
        seen[y * w + x] = 1;
        while (stack.length) {
            var i = stack.pop();
            data[i] = value;
            filled++;
            var px = i % w, py = (i - px) / w;
            var around = [px > 0 ? i - 1 : -1, px < w - 1 ? i + 1 : -1, py > 0 ? i - w : -1,
                py < map.height - 1 ? i + w : -1];
            for (var k = 0; k < 4; k++) {
                var j = around[k];
                if (j >= 0 && !seen[j] && Math.abs(data[j] - seed) <= tolerance) {
                    seen[j] = 1;
                    stack.push(j);
                }
            }
        }
        return filled;
    }
    DiffDiff.floodFill = floodFill;

    /**
     * Undo/redo of whole maps. `record(map)` before each change; `undo(current)` returns the map before the last
     * change (and keeps `current` for redo); `redo(current)` the reverse. Holds `limit` steps (at least 30).
     */
    function History(limit) {
        this.limit = Math.max(30, limit || 50);
        this.past = [];
        this.future = [];
    }
    History.prototype.record = function(map) {
        this.past.push(map.clone());
        if (this.past.length > this.limit) this.past.shift();
        this.future = [];
    };
    History.prototype.canUndo = function() {
        return this.past.length > 0;
    };
    History.prototype.canRedo = function() {
        return this.future.length > 0;
    };
    History.prototype.undo = function(current) {
        if (!this.past.length) return null;
        this.future.push(current.clone());
        return this.past.pop();
    };
    History.prototype.redo = function(current) {
        if (!this.future.length) return null;
        this.past.push(current.clone());
        return this.future.pop();
    };
    History.prototype.clear = function() {
        this.past = [];
        this.future = [];
    };
    DiffDiff.History = History;

    /**
     * The editor's view of the image: `scale` screen pixels per image pixel and the screen position of the image's
     * top-left corner. fitView centres the image in a box; zoomAt keeps the image point under (px, py) in place.
     */
    function fitView(imageW, imageH, boxW, boxH) {
        var scale = Math.min(boxW / imageW, boxH / imageH);
        return {scale: scale, x: (boxW - imageW * scale) / 2, y: (boxH - imageH * scale) / 2};
    }
    function zoomAt(view, factor, px, py, minScale, maxScale) {
        var scale = Math.min(Math.max(view.scale * factor, minScale || 0.05), maxScale || 64);
        var k = scale / view.scale;
        return {scale: scale, x: px - (px - view.x) * k, y: py - (py - view.y) * k};
    }
    function toImage(view, px, py) {
        return [(px - view.x) / view.scale, (py - view.y) / view.scale];
    }
    DiffDiff.fitView = fitView;
    DiffDiff.zoomAt = zoomAt;
    DiffDiff.toImage = toImage;

    /**
     * Editor shortcuts, active only while the editor has the keyboard focus (so none of them reaches the WebUI,
     * and the WebUI's own, such as Ctrl+Enter to generate, are never taken). Returns an action name or null.
     */
    var KEYS = {b: "brush", e: "eraser", g: "linear", r: "radial", f: "fill", i: "picker", x: "invert"};
    function shortcut(ev) {
        var key = (ev.key || "").toLowerCase();
        if (ev.altKey || ev.metaKey) return null;
        if (ev.ctrlKey) {
            if (key === "z") return ev.shiftKey ? "redo" : "undo";
            if (key === "y") return "redo";
            return null;
        }
        if (key === "0") return "fit";
        if (key === "[") return "smaller";
        if (key === "]") return "larger";
        return ev.shiftKey ? null : KEYS[key] || null;
    }
    DiffDiff.shortcut = shortcut;

    /** The map's size against the image's: null when they match, else a message saying what to do. */
    function sizeMismatch(map, imageW, imageH) {
        if (!map || (map.width === imageW && map.height === imageH)) return null;
        return "The painted map is " + map.width + "x" + map.height + " but the image is now " + imageW + "x" +
            imageH + ": rescale the map to the new image, or clear it.";
    }
    DiffDiff.sizeMismatch = sizeMismatch;

    function decodeBase64(text) {
        if (typeof atob === "function") {
            var bin = atob(text), out = new Uint8Array(bin.length);
            for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
            return out;
        }
        return new Uint8Array(Buffer.from(text, "base64"));
    }

    /**
     * The server's run preview (POST /diffdiff/v1/preview), decoded: the latent map (bytes) and, per latent pixel,
     * the first model call at which it is free (`calls` = never), for the first map of the batch.
     */
    function decodePreview(json) {
        var n = json.width * json.height;
        var mapBytes = decodeBase64(json.map);
        var freeBytes = decodeBase64(json.free_call);
        var free = new Uint16Array(n);
        for (var i = 0; i < n; i++) free[i] = freeBytes[2 * i] | (freeBytes[2 * i + 1] << 8);
        return {width: json.width, height: json.height, map: mapBytes.subarray(0, n), free: free, calls: json.calls};
    }
    /** Bool per latent pixel: held (on the noised original) at model call `call` (0-based). */
    function heldAt(preview, call) {
        var out = new Uint8Array(preview.free.length);
        for (var i = 0; i < out.length; i++) out[i] = preview.free[i] > call ? 1 : 0;
        return out;
    }
    /** The slider's caption for model call `call`. */
    function callCaption(json, call) {
        if (!json.calls) return "No model call: nothing would change.";
        var level = json.call_levels[call];
        return "Model call " + (call + 1) + " of " + json.calls + " (noise level " + Number(level).toPrecision(3) + ")";
    }
    DiffDiff.decodePreview = decodePreview;
    DiffDiff.heldAt = heldAt;
    DiffDiff.callCaption = callCaption;

    /**
     * The preview request from the img2img controls' raw values (as read from the page): the processing size
     * follows the WebUI ("Resize by" scales the init image, "Resize to" takes width and height), radios are
     * indices, and the inpaint fields matter only when there is a mask.
     */
    function previewRequest(c) {
        var scaleBy = c.resizeTab === "by";
        var width = scaleBy ? Math.floor(c.initWidth * c.scale) : c.width;
        var height = scaleBy ? Math.floor(c.initHeight * c.scale) : c.height;
        var body = {
            settings: c.settings,
            init_width: c.initWidth,
            init_height: c.initHeight,
            width: width,
            height: height,
            resize_mode: c.resizeMode || 0,
            steps: c.steps,
            denoising_strength: c.strength,
            sampler_name: c.sampler,
            scheduler: c.scheduler || "Automatic",
        };
        if (c.initImage) body.init_image = c.initImage;
        if (c.mask) {
            body.mask = c.mask;
            body.mask_blur = c.maskBlur || 0;
            body.mask_invert = !!c.maskInvert;
            body.only_masked = !!c.onlyMasked;
            body.padding = c.padding || 0;
        }
        return body;
    }
    DiffDiff.previewRequest = previewRequest;

    /** The map-source choices that do not read the init image's pixels (UI labels and API values; the rest of
     * lib_diffdiff.webui.settings.SOURCES do, and their preview sends the image). */
    var SOURCES_WITHOUT_IMAGE = ["Painted or uploaded", "painted", "Inpaint mask, from its edge in", "mask edge"];
    DiffDiff.SOURCES_WITHOUT_IMAGE = SOURCES_WITHOUT_IMAGE;
    /** Whether the map is made from a source rather than painted or uploaded. */
    DiffDiff.madeMap = function(source) {
        return !!source && source !== SOURCES_WITHOUT_IMAGE[0] && source !== SOURCES_WITHOUT_IMAGE[1];
    };
    /** Whether the preview of this source needs the init image itself. */
    DiffDiff.sourceReadsImage = function(source) {
        return !!source && SOURCES_WITHOUT_IMAGE.indexOf(source) < 0;
    };

    if (typeof module !== "undefined" && module.exports) module.exports = DiffDiff;
})(typeof window !== "undefined" ? window : globalThis);
