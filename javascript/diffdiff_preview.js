/*
 * Differential Diffusion, browser side: the run preview (DOM glue; decoding is in diffdiff_core.js).
 *
 * While the extension is enabled, it reads the panel's settings and the img2img controls the run depends on
 * (steps, denoising strength, sampler, schedule type, size, resize mode, inpaint settings and mask), asks the
 * server what the run will do (POST ./diffdiff/v1/preview, no model call), and shows the map as the sampler will
 * see it and which pixels are held or free at each model call, with a slider over the calls.
 */
(function() {
    "use strict";
    var D = window.DiffDiff;
    var POLL_MS = 700;
    var HELD = [40, 70, 160];
    var maskVersion = 0; // bumped when the user draws on an inpaint mask

    function app() {
        return typeof gradioApp === "function" ? gradioApp() : document;
    }
    function q(selector) {
        return app().querySelector(selector);
    }
    function numberOf(id) {
        var input = q("#" + id + " input[type=number]") || q("#" + id + " input");
        return input ? Number(input.value) : undefined;
    }
    /** A radio group's chosen index (gradio radios with type="index"), or a dropdown's / radio's text. */
    function radioIndex(id) {
        var inputs = app().querySelectorAll("#" + id + " input[type=radio]");
        for (var i = 0; i < inputs.length; i++) if (inputs[i].checked) return i;
        return 0;
    }
    function choice(id) {
        var checked = q("#" + id + " input[type=radio]:checked");
        if (checked) return checked.value;
        var input = q("#" + id + " input");
        return input ? input.value : undefined;
    }
    function checked(id) {
        var input = q("#" + id + " input[type=checkbox]");
        return input ? input.checked : false;
    }
    function enabled() {
        var visible = q("#diffdiff_enabled-visible-checkbox");
        return visible ? visible.checked : checked("diffdiff_enabled-checkbox");
    }
    /** "by" when the "Resize by" tab (scale) is the one shown, else "to" (width and height). */
    function resizeTab() {
        var by = q("#img2img_tab_resize_by");
        return by && by.offsetParent !== null ? "by" : "to";
    }
    /** The panel's settings in the API's named form (what the preview plans the map with). */
    function settings() {
        var out = {
            mode: choice("diffdiff_mode"),
            invert: checked("diffdiff_invert"),
            multiplier: numberOf("diffdiff_multiplier"),
            softness: numberOf("diffdiff_softness"),
            fan_strengths: (q("#diffdiff_fan_strengths textarea") || {}).value,
            equalize: checked("diffdiff_equalize"),
            continuous: checked("diffdiff_continuous"),
            source: choice("diffdiff_source"),
            source_estimator: choice("diffdiff_source_estimator"),
            source_colour: (q("#diffdiff_source_colour input[type=color]") || {}).value,
            source_tolerance: numberOf("diffdiff_source_tolerance"),
            source_reach: numberOf("diffdiff_source_reach"),
            source_point: (q("#diffdiff_source_point textarea") || q("#diffdiff_source_point input") || {}).value,
        };
        ["black_point", "white_point", "gamma", "blur", "quantize", "range_low", "range_high"].forEach(function(n) {
            out[n] = numberOf("diffdiff_" + n);
        });
        Object.keys(out).forEach(function(k) {
            if (out[k] === undefined || (typeof out[k] === "number" && isNaN(out[k]))) delete out[k];
        });
        return out;
    }
    function painted() {
        var field = q("#diffdiff_painted textarea");
        return field ? field.value : "";
    }
    function uploadedMapURL() {
        var img = q("#diffdiff_map img");
        if (!img || !img.naturalWidth) return null;
        var canvas = document.createElement("canvas");
        canvas.width = img.naturalWidth;
        canvas.height = img.naturalHeight;
        canvas.getContext("2d").drawImage(img, 0, 0);
        return canvas.toDataURL("image/png");
    }
    var imageCache = {key: null, url: null};
    /** The init image as a PNG data URL (what a map source is made from), drawn once per image. */
    function imageURL(img) {
        var key = [img.src.length, img.src.slice(-64), img.naturalWidth, img.naturalHeight].join("|");
        if (imageCache.key !== key) {
            var canvas = document.createElement("canvas");
            canvas.width = img.naturalWidth;
            canvas.height = img.naturalHeight;
            canvas.getContext("2d").drawImage(img, 0, 0);
            imageCache = {key: key, url: canvas.toDataURL("image/png")};
        }
        return imageCache.url;
    }
    function maskURL(width, height) {
        return D.inpaintMask(width, height).then(function(mask) {
            return mask ? D.mapToDataURL(mask) : null;
        });
    }

    function Preview(mount) {
        this.last = null;
        this.signature = null;
        this.request = 0;
        this.build(mount);
    }
    Preview.prototype.build = function(mount) {
        var self = this;
        function el(tag, attrs) {
            var node = document.createElement(tag);
            Object.keys(attrs).forEach(function(k) {
                if (k === "text") node.textContent = attrs[k];
                else node.setAttribute(k, attrs[k]);
            });
            return node;
        }
        this.root = el("div", {id: "diffdiff_preview"});
        this.summary = el("div", {id: "diffdiff_preview_summary", class: "diffdiff-status",
            text: "Turn Differential Diffusion on and upload an image to see what the run will do."});
        this.error = el("div", {id: "diffdiff_preview_error", class: "diffdiff-warning", style: "display:none"});
        this.mapCanvas = el("canvas", {id: "diffdiff_preview_map", title: "The map as the sampler sees it " +
            "(after shaping, crop and resize, inside the inpaint mask, one pixel per latent pixel)"});
        this.callCanvas = el("canvas", {id: "diffdiff_preview_calls", title: "Blue: held on the original, noised " +
            "to this call's level. Clear: free, denoised by the sampler."});
        this.slider = el("input", {type: "range", id: "diffdiff_preview_step", min: 0, max: 0, value: 0, step: 1});
        this.caption = el("div", {id: "diffdiff_preview_caption", class: "diffdiff-hint"});
        this.fan = el("div", {id: "diffdiff_preview_fan", class: "diffdiff-hint"});
        var pictures = this.pictures = el("div", {class: "diffdiff-preview-pictures"});
        pictures.appendChild(this.mapCanvas);
        pictures.appendChild(this.callCanvas);
        [this.summary, this.error, pictures, this.slider, this.caption, this.fan].forEach(function(n) {
            self.root.appendChild(n);
        });
        mount.appendChild(this.root);
        this.slider.addEventListener("input", function() {
            self.drawCall();
        });
    };
    /** What the preview depends on, cheaply: when it changes, ask the server again. */
    Preview.prototype.currentSignature = function(img) {
        var editor = D.editor;
        return JSON.stringify([
            settings(), painted().length, editor ? editor.version : 0, (q("#diffdiff_map img") || {}).src || "",
            img ? [img.src.length, img.src.slice(-64), img.naturalWidth, img.naturalHeight] : null,
            D.activeTab(), numberOf("img2img_steps"), numberOf("img2img_denoising_strength"),
            choice("img2img_sampling"), choice("img2img_scheduler"), numberOf("img2img_width"),
            numberOf("img2img_height"), numberOf("img2img_scale"), resizeTab(),
            radioIndex("resize_mode"), numberOf("img2img_mask_blur"), radioIndex("img2img_mask_mode"),
            radioIndex("img2img_inpaint_full_res"), numberOf("img2img_inpaint_full_res_padding"),
            maskVersion,
        ]);
    };
    Preview.prototype.tick = function() {
        var editorMount = q("#diffdiff_editor_mount");
        if (editorMount) editorMount.style.display = choice("diffdiff_mode") === "Change map" ? "" : "none";
        if (!enabled() || !this.root.isConnected) return;
        var img = D.initImage();
        var signature = this.currentSignature(img);
        if (signature === this.signature) return;
        this.signature = signature;
        this.refresh(img);
    };
    Preview.prototype.refresh = function(img) {
        var self = this;
        if (!img) {
            this.show(null, "Upload an image in this img2img tab to see the preview.");
            return;
        }
        var w = img.naturalWidth, h = img.naturalHeight, id = ++this.request;
        var tab = D.activeTab();
        var s = settings();
        var mapURL = painted() || uploadedMapURL();
        if (mapURL) s.map = mapURL;
        var made = s.mode === "Change map" && D.madeMap(s.source);
        if (s.mode === "Change map" && !mapURL && !made) {
            this.show(null, null);
            this.summary.textContent = "Upload or paint a change map to see what the run will do.";
            return;
        }
        if (s.mode === "Soft inpaint" && tab !== 2 && tab !== 4) {
            this.show(null, null);
            this.summary.textContent = "Soft inpaint works in the Inpaint and Inpaint upload tabs.";
            return;
        }
        var scaleTab = resizeTab();
        var needsMask = tab === 2 || tab === 4;
        (needsMask ? maskURL(w, h) : Promise.resolve(null)).then(function(mask) {
            var body = D.previewRequest({
                settings: s, initWidth: w, initHeight: h, width: numberOf("img2img_width"),
                height: numberOf("img2img_height"), scale: numberOf("img2img_scale"), resizeTab: scaleTab,
                resizeMode: radioIndex("resize_mode"), steps: numberOf("img2img_steps"),
                strength: numberOf("img2img_denoising_strength"), sampler: choice("img2img_sampling"),
                scheduler: choice("img2img_scheduler"), mask: mask, maskBlur: numberOf("img2img_mask_blur"),
                maskInvert: radioIndex("img2img_mask_mode") === 1, onlyMasked: radioIndex("img2img_inpaint_full_res") === 1,
                padding: numberOf("img2img_inpaint_full_res_padding"),
                initImage: made && D.sourceReadsImage(s.source) ? imageURL(img) : null,
            });
            return fetch("./diffdiff/v1/preview", {method: "POST", headers: {"Content-Type": "application/json"},
                body: JSON.stringify(body)});
        }).then(function(response) {
            return response.json().then(function(json) {
                return {ok: response.ok, json: json};
            });
        }).then(function(result) {
            if (id !== self.request) return; // a newer request is on its way
            if (!result.ok) {
                var detail = result.json && result.json.detail;
                self.show(null, typeof detail === "string" ? detail : "The preview failed: " + JSON.stringify(detail));
                return;
            }
            self.show(result.json, null, img);
        }).catch(function(e) {
            if (id === self.request) self.show(null, "The preview failed: " + e.message);
        });
    };
    Preview.prototype.show = function(json, error, img) {
        this.error.style.display = error ? "" : "none";
        this.error.textContent = error || "";
        this.last = json;
        [this.pictures, this.slider, this.caption, this.fan].forEach(function(n) {
            n.style.display = json ? "" : "none";
        });
        if (!json) return;
        this.decoded = D.decodePreview(json);
        this.image = img;
        this.summary.textContent = json.summary + (json.never_freed ? "; " + json.never_freed +
            " latent pixels kept" : "");
        var keep = Number(this.slider.value);
        this.slider.max = Math.max(0, json.calls - 1);
        this.slider.value = Math.min(keep, Math.max(0, json.calls - 1));
        this.fan.textContent = json.fan ? "Fan columns, left to right: " + json.fan.map(function(c) {
            return c.strength;
        }).join(", ") : "";
        this.drawMap();
        this.drawCall();
    };
    Preview.prototype.drawMap = function() {
        var p = this.decoded;
        this.mapCanvas.width = p.width;
        this.mapCanvas.height = p.height;
        var grey = new D.GreyMap(p.width, p.height, new Uint8ClampedArray(p.map));
        this.mapCanvas.getContext("2d").putImageData(new ImageData(grey.toRGBA(), p.width, p.height), 0, 0);
    };
    Preview.prototype.drawCall = function() {
        var json = this.last;
        if (!json) return;
        var p = this.decoded, call = Number(this.slider.value);
        this.caption.textContent = D.callCaption(json, call);
        var scale = Math.max(1, Math.floor(384 / Math.max(p.width, p.height)));
        var canvas = this.callCanvas;
        canvas.width = p.width * scale;
        canvas.height = p.height * scale;
        var ctx = canvas.getContext("2d");
        ctx.clearRect(0, 0, canvas.width, canvas.height);
        if (this.image) {
            var crop = json.crop, img = this.image;
            if (crop) ctx.drawImage(img, crop[0], crop[1], crop[2], crop[3], 0, 0, canvas.width, canvas.height);
            else ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
        }
        if (!json.calls) return;
        var held = D.heldAt(p, call);
        var overlay = new Uint8ClampedArray(p.width * p.height * 4);
        for (var i = 0; i < held.length; i++) {
            overlay[4 * i] = HELD[0];
            overlay[4 * i + 1] = HELD[1];
            overlay[4 * i + 2] = HELD[2];
            overlay[4 * i + 3] = held[i] ? 170 : 0;
        }
        var small = document.createElement("canvas");
        small.width = p.width;
        small.height = p.height;
        small.getContext("2d").putImageData(new ImageData(overlay, p.width, p.height), 0, 0);
        ctx.imageSmoothingEnabled = false;
        ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
    };

    function mount() {
        var target = document.getElementById("diffdiff_preview_mount") || app().querySelector("#diffdiff_preview_mount");
        if (!target || target.getAttribute("data-mounted")) return;
        target.setAttribute("data-mounted", "1");
        var preview = DiffDiff.preview = new Preview(target);
        if (D.editor) D.editor.onChange(function() {
            preview.tick();
        });
        app().addEventListener("pointerup", function(ev) {
            if (ev.target && ev.target.closest && ev.target.closest("#img2maskimg, #img_inpaint_mask")) maskVersion++;
        }, true);
        setInterval(function() {
            preview.tick();
        }, POLL_MS);
    }
    DiffDiff.mountPreview = mount;
    DiffDiff.panelSettings = settings;
    /** The body of POST ./diffdiff/v1/made_map for the panel's Map source and this init image (the editor opens the
     * answer): the image, or the inpaint mask for the source made from it. */
    DiffDiff.madeMapBody = function(img) {
        var s = settings();
        var fromMask = !D.sourceReadsImage(s.source);
        return (fromMask ? maskURL(img.naturalWidth, img.naturalHeight) : Promise.resolve(null)).then(function(mask) {
            return {settings: s, init_image: fromMask ? null : imageURL(img), mask: mask,
                mask_invert: radioIndex("img2img_mask_mode") === 1};
        });
    };
    if (typeof onUiLoaded === "function") onUiLoaded(mount);
})();
