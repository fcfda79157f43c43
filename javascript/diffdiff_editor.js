/*
 * Differential Diffusion, browser side: the change-map editor (DOM glue; the logic is in diffdiff_core.js).
 *
 * It lives in the extension's panel (#diffdiff_editor inside #diffdiff_editor_mount), paints a grey map of the
 * current init image's size over that image, and hands the map to the server through the hidden textbox
 * #diffdiff_painted as a PNG data URL, which the server reads like an uploaded map. Shortcuts act only while the
 * editor has the keyboard focus. Nothing runs until the panel is on the page; with the extension disabled the
 * editor stays closed and idle.
 */
(function() {
    "use strict";
    var D = window.DiffDiff;
    var TOOLS = ["brush", "eraser", "linear", "radial", "fill", "picker"];
    var ACTIONS = ["invert", "clear", "undo", "redo"];
    var LABELS = {
        brush: "● Brush", eraser: "○ Eraser", linear: "▭ Linear", radial: "◎ Radial", fill: "▣ Fill",
        picker: "◈ Picker", invert: "◐ Invert", clear: "✕ Clear", undo: "↶ Undo", redo: "↷ Redo",
    };
    var TITLES = {
        brush: "Brush (B): paint the grey value", eraser: "Eraser (E): paint black (keep)",
        linear: "Linear gradient (G): drag from start to end", radial: "Radial gradient (R): drag from centre to edge",
        fill: "Bucket fill (F): fill the region of similar grey", picker: "Value picker (I): take the grey under the pointer",
        invert: "Invert (X): swap change and keep", clear: "Clear: all black (keep everything)",
        undo: "Undo (Ctrl+Z)", redo: "Redo (Ctrl+Y or Ctrl+Shift+Z)",
    };
    /** The init image's component in each img2img sub-tab, by tab index (A1111 and Forge use the same ids). */
    var IMAGE_IDS = ["img2img_image", "img2img_sketch", "img2maskimg", "inpaint_sketch", "img_inpaint_base"];

    function app() {
        return typeof gradioApp === "function" ? gradioApp() : document;
    }
    function byId(id) {
        return app().querySelector("#" + id);
    }

    /** Index of the selected img2img sub-tab (0 img2img, 1 sketch, 2 inpaint, 3 inpaint sketch, 4 upload). */
    function activeTab() {
        var tabs = byId("mode_img2img");
        if (!tabs) return 0;
        var buttons = tabs.querySelector("div").querySelectorAll("button");
        for (var i = 0; i < buttons.length; i++) if (buttons[i].classList.contains("selected")) return i;
        return 0;
    }
    /** The init image of the selected sub-tab as uploaded (an <img> with its natural size), or null. */
    function initImage() {
        var id = IMAGE_IDS[activeTab()];
        var root = id && byId(id);
        if (!root) return null;
        var images = root.querySelectorAll("img");
        for (var i = 0; i < images.length; i++) {
            var img = images[i];
            if (img.getAttribute("src") && img.naturalWidth > 0 && img.complete) return img;
        }
        return null;
    }
    function pixelsOf(source, width, height) {
        var canvas = document.createElement("canvas");
        canvas.width = width;
        canvas.height = height;
        var ctx = canvas.getContext("2d");
        ctx.drawImage(source, 0, 0, width, height);
        return ctx.getImageData(0, 0, width, height).data;
    }
    function loadImage(src) {
        return new Promise(function(resolve, reject) {
            var img = new Image();
            img.onload = function() {
                resolve(img);
            };
            img.onerror = function() {
                reject(new Error("could not load " + String(src).slice(0, 60)));
            };
            img.src = src;
        });
    }
    /**
     * The inpaint mask of the selected tab as a grey map of the image's size (painted = white), or null. A1111
     * (gradio 3) keeps it in the sketch's "mask" canvas, Forge in its canvas' foreground layer (a hidden textbox
     * holding a PNG), "Inpaint upload" in its mask image; each is read by its alpha or grey, as the host reads it.
     */
    function inpaintMask(width, height) {
        var tab = activeTab();
        if (tab === 4) {
            var up = byId("img_inpaint_mask");
            var img = up && up.querySelector("img");
            if (!img || !img.naturalWidth) return Promise.resolve(null);
            return Promise.resolve(D.GreyMap.fromRGBA(width, height, pixelsOf(img, width, height)));
        }
        if (tab !== 2) return Promise.resolve(null);
        var root = byId("img2maskimg");
        if (!root) return Promise.resolve(null);
        var canvas = root.querySelector('canvas[key="mask"]');
        if (canvas) return Promise.resolve(D.GreyMap.fromAlpha(width, height, pixelsOf(canvas, width, height)));
        var container = root.querySelector(".forge-container");
        var uuid = container && container.id.replace(/^container_/, "");
        var field = uuid && app().querySelector("#" + uuid + ".logical_image_foreground textarea");
        if (!field || !field.value) return Promise.resolve(null);
        return loadImage(field.value).then(function(layer) {
            return D.GreyMap.fromAlpha(width, height, pixelsOf(layer, width, height));
        });
    }
    /** The map uploaded in the panel's "Change map" image, as a grey map of the given size, or null. */
    function uploadedMap(width, height) {
        var root = byId("diffdiff_map");
        var img = root && root.querySelector("img");
        if (!img || !img.naturalWidth) return null;
        return D.GreyMap.fromRGBA(width, height, pixelsOf(img, width, height));
    }
    /** The map the panel's Map source makes from this image, made by the server as a run makes it, as a grey map of
     * the given size; rejects with the reason when there is none. */
    function madeMap(img, width, height) {
        if (!D.madeMapBody) return Promise.reject(new Error("The preview is not loaded."));
        return D.madeMapBody(img).then(function(body) {
            if (!D.madeMap(body.settings.source)) throw new Error("Pick a Map source first: the map it makes opens here.");
            return fetch("./diffdiff/v1/made_map", {method: "POST", headers: {"Content-Type": "application/json"},
                body: JSON.stringify(body)});
        }).then(function(response) {
            return response.json().then(function(json) {
                if (!response.ok) throw new Error(typeof json.detail === "string" ? json.detail : JSON.stringify(json));
                return loadImage(json.map);
            });
        }).then(function(picture) {
            return D.GreyMap.fromRGBA(width, height, pixelsOf(picture, width, height));
        });
    }
    function mapToDataURL(map) {
        var canvas = document.createElement("canvas");
        canvas.width = map.width;
        canvas.height = map.height;
        var ctx = canvas.getContext("2d");
        ctx.putImageData(new ImageData(map.toRGBA(), map.width, map.height), 0, 0);
        return canvas.toDataURL("image/png");
    }
    function setTextbox(id, value) {
        var field = app().querySelector("#" + id + " textarea");
        if (!field || field.value === value) return;
        field.value = value;
        if (typeof updateInput === "function") {
            updateInput(field);
        } else {
            field.dispatchEvent(new Event("input", {bubbles: true}));
        }
    }

    function el(tag, attrs, children) {
        var node = document.createElement(tag);
        Object.keys(attrs || {}).forEach(function(k) {
            if (k === "text") node.textContent = attrs[k];
            else node.setAttribute(k, attrs[k]);
        });
        (children || []).forEach(function(c) {
            node.appendChild(c);
        });
        return node;
    }
    function labelled(text, input) {
        return el("label", {class: "diffdiff-field"}, [el("span", {text: text}), input]);
    }
    function range(id, min, max, value, step) {
        return el("input", {type: "range", id: id, min: min, max: max, value: value, step: step || 1});
    }

    /** The editor: one per page, built into #diffdiff_editor_mount. */
    function Editor(mount) {
        this.map = null; // the map being edited, or null
        this.painted = false; // whether it was changed and so replaces the uploaded map
        this.history = new D.History(50);
        this.tool = "brush";
        this.view = null;
        this.image = null;
        this.version = 0;
        this.listeners = [];
        this.build(mount);
    }
    Editor.prototype.build = function(mount) {
        var self = this;
        this.openButton = el("button", {id: "diffdiff_open_editor", class: "lg secondary gradio-button",
            type: "button", text: "Paint the change map over the image"});
        this.status = el("div", {id: "diffdiff_editor_status", class: "diffdiff-status"});
        this.warning = el("div", {id: "diffdiff_editor_warning", class: "diffdiff-warning", style: "display:none"});
        this.warningText = el("span");
        var rescale = el("button", {id: "diffdiff_rescale", type: "button", class: "secondary gradio-button",
            text: "Rescale map"});
        var dropPainted = el("button", {id: "diffdiff_clear_painted", type: "button", class: "secondary gradio-button",
            text: "Clear map"});
        this.warning.appendChild(this.warningText);
        this.warning.appendChild(rescale);
        this.warning.appendChild(dropPainted);

        var toolbar = el("div", {class: "diffdiff-toolbar"});
        var fitButton = el("button", {id: "diffdiff_fit", type: "button", class: "diffdiff-tool",
            title: "Fit the image in the panel (0)", text: "⤢ Fit"});
        fitButton.addEventListener("click", function() {
            self.fit();
        });
        TOOLS.concat(ACTIONS).forEach(function(name) {
            var button = el("button", {id: "diffdiff_tool_" + name, type: "button", title: TITLES[name],
                "data-tool": name, class: "diffdiff-tool", text: LABELS[name]});
            button.addEventListener("click", function() {
                self.command(name);
            });
            toolbar.appendChild(button);
        });
        toolbar.appendChild(fitButton);
        this.valueInput = range("diffdiff_value", 0, 255, 255);
        this.valueNumber = el("input", {type: "number", id: "diffdiff_value_number", min: 0, max: 255, value: 255});
        this.sizeInput = range("diffdiff_size", 1, 512, 48);
        this.hardnessInput = range("diffdiff_hardness", 0, 100, 60);
        this.fromInput = el("input", {type: "number", id: "diffdiff_gradient_from", min: 0, max: 255, value: 255});
        this.toInput = el("input", {type: "number", id: "diffdiff_gradient_to", min: 0, max: 255, value: 0});
        this.toleranceInput = el("input", {type: "number", id: "diffdiff_fill_tolerance", min: 0, max: 255, value: 8});
        this.opacityInput = range("diffdiff_opacity", 0, 100, 60);
        this.valueInput.addEventListener("input", function() {
            self.valueNumber.value = self.valueInput.value;
        });
        this.valueNumber.addEventListener("input", function() {
            self.valueInput.value = self.valueNumber.value;
        });
        this.opacityInput.addEventListener("input", function() {
            self.draw();
        });
        var settings = el("div", {class: "diffdiff-settings"}, [
            labelled("Grey (0 keep – 255 change)", el("span", {}, [this.valueInput, this.valueNumber])),
            labelled("Brush size", this.sizeInput),
            labelled("Hardness", this.hardnessInput),
            labelled("Gradient start", this.fromInput),
            labelled("Gradient end", this.toInput),
            labelled("Fill tolerance", this.toleranceInput),
            labelled("Map opacity", this.opacityInput),
        ]);
        var startRow = el("div", {class: "diffdiff-start"}, [el("span", {text: "Start from: "})]);
        [["black", "black (keep all)"], ["upload", "the uploaded map"], ["mask", "the inpaint mask"],
            ["made", "the Map source's map"]].forEach(function(s) {
            var b = el("button", {id: "diffdiff_start_" + s[0], type: "button", class: "secondary gradio-button",
                text: s[1]});
            b.addEventListener("click", function() {
                self.startFrom(s[0]);
            });
            startRow.appendChild(b);
        });
        var close = el("button", {id: "diffdiff_close_editor", type: "button", class: "secondary gradio-button",
            text: "Close editor"});
        startRow.appendChild(close);
        this.canvas = el("canvas", {id: "diffdiff_editor_canvas", tabindex: "0"});
        this.canvasBox = el("div", {class: "diffdiff-canvas-box"}, [this.canvas]);
        this.root = el("div", {id: "diffdiff_editor", tabindex: "-1", style: "display:none"},
            [toolbar, settings, startRow, this.canvasBox,
                el("div", {class: "diffdiff-hint", text: "Wheel: zoom · middle button or Space+drag: pan · " +
                    "0: fit · [ ]: brush size · shortcuts work while the editor has the focus"})]);
        mount.appendChild(this.openButton);
        mount.appendChild(this.status);
        mount.appendChild(this.warning);
        mount.appendChild(this.root);

        this.openButton.addEventListener("click", function() {
            self.open();
        });
        close.addEventListener("click", function() {
            self.close();
        });
        rescale.addEventListener("click", function() {
            self.rescale();
        });
        dropPainted.addEventListener("click", function() {
            self.dropPainted();
        });
        this.bindPointer();
        this.root.addEventListener("keydown", function(ev) {
            self.onKey(ev);
        });
        this.selectTool("brush");
        this.updateStatus();
    };
    Editor.prototype.onChange = function(fn) {
        this.listeners.push(fn);
    };
    Editor.prototype.changed = function() {
        this.version++;
        this.painted = this.map !== null;
        var url = this.map ? mapToDataURL(this.map) : "";
        setTextbox("diffdiff_painted", url);
        this.updateStatus();
        this.listeners.forEach(function(fn) {
            fn();
        });
    };
    Editor.prototype.updateStatus = function() {
        this.status.textContent = this.painted ?
            "Painted map in use (" + this.map.width + "x" + this.map.height + "); it replaces the uploaded map." :
            "No painted map: the uploaded map is used.";
        this.checkSize();
    };
    /** Warn when the init image's size no longer matches the painted map's (never a silent misalignment). */
    Editor.prototype.checkSize = function() {
        var img = initImage();
        var message = img && this.map && D.sizeMismatch(this.map, img.naturalWidth, img.naturalHeight);
        this.warning.style.display = message ? "" : "none";
        this.warningText.textContent = message ? message + " " : "";
        return message;
    };
    Editor.prototype.rescale = function() {
        var img = initImage();
        if (!this.map || !img) return;
        this.history.record(this.map);
        this.map = this.map.resized(img.naturalWidth, img.naturalHeight);
        this.image = img;
        this.fit();
        this.changed();
    };
    /** A map was uploaded in the panel: from now on it is the map (a painted one would silently override it). */
    Editor.prototype.uploaded = function(src) {
        if (src === this.lastUpload) return;
        var first = this.lastUpload === undefined;
        this.lastUpload = src;
        if (first && !this.map) return;
        if (this.map) this.history.record(this.map);
        this.map = null;
        this.close();
        this.changed();
        this.status.textContent = "A new map was uploaded and is used now; open the editor to paint over it.";
    };
    Editor.prototype.dropPainted = function() {
        if (this.map) this.history.record(this.map);
        this.map = null;
        this.close();
        this.changed();
    };
    Editor.prototype.open = function() {
        var img = initImage();
        if (!img) {
            this.status.textContent = "Upload an image in this img2img tab first: the map is painted over it.";
            return;
        }
        this.image = img;
        if (!this.map) {
            // not yet "painted": the uploaded map stays in use until the first change
            this.map = uploadedMap(img.naturalWidth, img.naturalHeight) || new D.GreyMap(img.naturalWidth,
                img.naturalHeight);
            this.history.clear();
        } else if (this.checkSize()) {
            return; // rescale or clear first
        }
        this.root.style.display = "";
        this.openButton.style.display = "none";
        this.fit();
        this.canvas.focus({preventScroll: true});
    };
    Editor.prototype.close = function() {
        this.root.style.display = "none";
        this.openButton.style.display = "";
    };
    Editor.prototype.startFrom = function(source) {
        var self = this, img = initImage();
        if (!img) return;
        var w = img.naturalWidth, h = img.naturalHeight;
        var next = source === "upload" ? Promise.resolve(uploadedMap(w, h)) :
            source === "mask" ? inpaintMask(w, h) : source === "made" ? madeMap(img, w, h) :
                Promise.resolve(new D.GreyMap(w, h));
        next.then(function(map) {
            if (!map) {
                self.status.textContent = source === "mask" ? "No inpaint mask is drawn in this tab." :
                    "No change map is uploaded in the panel.";
                return;
            }
            if (self.map) self.history.record(self.map);
            self.map = map;
            self.image = img;
            self.fit();
            self.changed();
            if (source === "made") {
                // from now on the painted map is the map: the source's dropdown goes back to "Painted or uploaded"
                var use = byId("diffdiff_use_painted");
                if (use) use.click();
                self.status.textContent = "The Map source's map is open: touch it up. Map source is now " +
                    "\u201cPainted or uploaded\u201d, so this painted map is the run's map.";
            }
        }).catch(function(e) {
            self.status.textContent = e.message;
        });
    };
    Editor.prototype.selectTool = function(name) {
        this.tool = name;
        this.root.querySelectorAll(".diffdiff-tool").forEach(function(b) {
            b.classList.toggle("selected", b.getAttribute("data-tool") === name);
        });
        this.canvas.style.cursor = name === "picker" ? "copy" : "crosshair";
    };
    Editor.prototype.command = function(name) {
        if (TOOLS.indexOf(name) >= 0) {
            this.selectTool(name);
            return;
        }
        if (!this.map) return;
        if (name === "undo" || name === "redo") {
            var other = name === "undo" ? this.history.undo(this.map) : this.history.redo(this.map);
            if (other) {
                this.map = other;
                this.draw();
                this.changed();
            }
            return;
        }
        this.history.record(this.map);
        if (name === "invert") this.map.invert();
        if (name === "clear") this.map.fill(0);
        this.draw();
        this.changed();
    };
    Editor.prototype.onKey = function(ev) {
        var target = ev.target;
        if (target && target !== this.canvas && /INPUT|TEXTAREA|SELECT/.test(target.tagName)) return;
        if (ev.key === " ") {
            this.spaceDown = ev.type === "keydown";
            ev.preventDefault();
            return;
        }
        var action = D.shortcut(ev);
        if (!action) return;
        ev.preventDefault();
        ev.stopPropagation();
        if (action === "fit") {
            this.fit();
            return;
        }
        if (action === "smaller" || action === "larger") {
            var size = Number(this.sizeInput.value);
            this.sizeInput.value = action === "larger" ? Math.ceil(size * 1.25) : Math.max(1, Math.floor(size / 1.25));
            return;
        }
        this.command(action);
    };
    Editor.prototype.fit = function() {
        if (!this.map) return;
        var box = this.canvasBox.getBoundingClientRect();
        var width = Math.max(200, Math.floor(box.width || this.root.clientWidth || 512));
        var height = Math.max(200, Math.min(Math.floor(window.innerHeight * 0.7),
            Math.round(width * this.map.height / this.map.width)));
        this.canvas.width = width;
        this.canvas.height = height;
        this.view = D.fitView(this.map.width, this.map.height, width, height);
        this.draw();
    };
    Editor.prototype.draw = function() {
        if (!this.map || !this.view) return;
        var ctx = this.canvas.getContext("2d");
        ctx.setTransform(1, 0, 0, 1, 0, 0);
        ctx.fillStyle = "#808080";
        ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
        var v = this.view;
        ctx.setTransform(v.scale, 0, 0, v.scale, v.x, v.y);
        ctx.imageSmoothingEnabled = v.scale < 1;
        if (this.image) ctx.drawImage(this.image, 0, 0, this.map.width, this.map.height);
        if (!this.mapCanvas || this.mapCanvas.width !== this.map.width || this.mapCanvas.height !== this.map.height) {
            this.mapCanvas = document.createElement("canvas");
            this.mapCanvas.width = this.map.width;
            this.mapCanvas.height = this.map.height;
        }
        this.mapCanvas.getContext("2d").putImageData(new ImageData(this.map.toRGBA(), this.map.width,
            this.map.height), 0, 0);
        ctx.globalAlpha = Number(this.opacityInput.value) / 100;
        ctx.drawImage(this.mapCanvas, 0, 0);
        ctx.globalAlpha = 1;
        ctx.setTransform(1, 0, 0, 1, 0, 0);
    };
    Editor.prototype.scheduleDraw = function() {
        var self = this;
        if (this.drawPending) return;
        this.drawPending = true;
        requestAnimationFrame(function() {
            self.drawPending = false;
            self.draw();
        });
    };
    Editor.prototype.imagePoint = function(ev) {
        var rect = this.canvas.getBoundingClientRect();
        var sx = this.canvas.width / rect.width, sy = this.canvas.height / rect.height;
        return D.toImage(this.view, (ev.clientX - rect.left) * sx, (ev.clientY - rect.top) * sy);
    };
    Editor.prototype.bindPointer = function() {
        var self = this, canvas = this.canvas, drag = null;
        canvas.addEventListener("pointerdown", function(ev) {
            if (!self.map) return;
            canvas.focus({preventScroll: true});
            canvas.setPointerCapture(ev.pointerId);
            var p = self.imagePoint(ev);
            if (ev.button === 1 || (ev.button === 0 && self.spaceDown)) {
                drag = {pan: true, x: ev.clientX, y: ev.clientY, view: self.view};
                ev.preventDefault();
                return;
            }
            if (ev.button !== 0) return;
            var tool = self.tool;
            if (tool === "picker") {
                var v = self.map.pick(p[0], p[1]);
                if (v !== null) self.valueInput.value = self.valueNumber.value = v;
                return;
            }
            self.history.record(self.map);
            if (tool === "fill") {
                D.floodFill(self.map, p[0], p[1], Number(self.valueInput.value), Number(self.toleranceInput.value));
                self.draw();
                self.changed();
                return;
            }
            if (tool === "brush" || tool === "eraser") {
                var value = tool === "eraser" ? 0 : Number(self.valueInput.value);
                drag = {stroke: new D.Stroke(self.map, value, Number(self.sizeInput.value) / 2,
                    Number(self.hardnessInput.value) / 100).to(p[0], p[1])};
            } else {
                drag = {gradient: tool, start: p, base: self.map.clone()};
            }
            self.scheduleDraw();
        });
        canvas.addEventListener("pointermove", function(ev) {
            if (!drag) return;
            if (drag.pan) {
                var rect = canvas.getBoundingClientRect(), k = canvas.width / rect.width;
                self.view = {scale: drag.view.scale, x: drag.view.x + (ev.clientX - drag.x) * k,
                    y: drag.view.y + (ev.clientY - drag.y) * k};
                self.scheduleDraw();
                return;
            }
            var p = self.imagePoint(ev);
            if (drag.stroke) {
                drag.stroke.to(p[0], p[1]);
            } else {
                var fill = drag.gradient === "linear" ? D.linearGradient : D.radialGradient;
                fill(self.map, drag.start[0], drag.start[1], p[0], p[1], Number(self.fromInput.value),
                    Number(self.toInput.value));
            }
            self.scheduleDraw();
        });
        var end = function() {
            if (!drag) return;
            var changedMap = !drag.pan;
            drag = null;
            if (changedMap) {
                self.draw();
                self.changed();
            }
        };
        canvas.addEventListener("pointerup", end);
        canvas.addEventListener("pointercancel", end);
        canvas.addEventListener("wheel", function(ev) {
            if (!self.map) return;
            ev.preventDefault();
            var rect = canvas.getBoundingClientRect(), k = canvas.width / rect.width;
            self.view = D.zoomAt(self.view, ev.deltaY < 0 ? 1.2 : 1 / 1.2, (ev.clientX - rect.left) * k,
                (ev.clientY - rect.top) * k);
            self.scheduleDraw();
        }, {passive: false});
        this.root.addEventListener("keyup", function(ev) {
            if (ev.key === " ") self.spaceDown = false;
        });
    };

    function mount() {
        var target = byId("diffdiff_editor_mount");
        if (!target || target.getAttribute("data-mounted")) return;
        target.setAttribute("data-mounted", "1");
        DiffDiff.editor = new Editor(target);
        // a new init image: check the painted map's size against it; a newly uploaded map replaces a painted one
        app().addEventListener("load", function(ev) {
            var target = ev.target;
            if (!target || target.tagName !== "IMG" || !DiffDiff.editor) return;
            if (target.closest && target.closest("#diffdiff_map")) DiffDiff.editor.uploaded(target.src);
            DiffDiff.editor.updateStatus();
        }, true);
    }
    DiffDiff.mountEditor = mount;
    DiffDiff.initImage = initImage;
    DiffDiff.inpaintMask = inpaintMask;
    DiffDiff.mapToDataURL = mapToDataURL;
    DiffDiff.activeTab = activeTab;

    if (typeof onUiLoaded === "function") onUiLoaded(mount);
})();
