// Unit tests of javascript/diffdiff_core.js (the editor's and preview's pure logic): `node --test tests/js`.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const D = require("../../javascript/diffdiff_core.js");

function filled(w, h, v) {
    return new D.GreyMap(w, h).fill(v);
}

test("the namespace is the only thing the file defines", () => {
    assert.equal(globalThis.DiffDiff, D);
    for (const name of ["GreyMap", "Stroke", "History", "linearGradient", "radialGradient", "floodFill"]) {
        assert.equal(globalThis[name], undefined, name + " leaked into the global scope");
    }
});

test("a brush dab paints its value at the centre and nothing beyond its radius", () => {
    const map = filled(40, 40, 0);
    new D.Stroke(map, 200, 6, 1).to(20, 20);
    assert.equal(map.pick(20, 20), 200);
    assert.equal(map.pick(20, 27), 0);
    assert.equal(map.pick(27, 20), 0);
    assert.equal(map.pick(20, 24), 200); // inside a hard brush: full value
    assert.ok(map.pick(20, 25) > 150 && map.pick(20, 25) < 200, "the rim is anti-aliased");
});

test("a soft brush falls off smoothly towards its edge", () => {
    const map = filled(60, 11, 0);
    new D.Stroke(map, 255, 20, 0).to(30.5, 5.5);
    const row = [];
    for (let x = 30; x < 52; x++) row.push(map.pick(x, 5));
    assert.equal(row[0], 255);
    for (let i = 1; i < row.length; i++) assert.ok(row[i] <= row[i - 1], "monotone falloff at " + i);
    assert.ok(row[10] > 20 && row[10] < 235, "mid-radius is grey, got " + row[10]);
    assert.equal(row[21], 0);
});

test("going over the same spot in one stroke does not build up", () => {
    const once = filled(30, 30, 100), twice = filled(30, 30, 100);
    new D.Stroke(once, 0, 8, 0.3).to(15, 15);
    new D.Stroke(twice, 0, 8, 0.3).to(15, 15).to(15, 15).to(15, 15);
    assert.ok(once.equals(twice));
    assert.ok(once.pick(10, 15) > 0 && once.pick(10, 15) < 100, "a soft edge that would darken if summed");
});

test("a fast stroke leaves no gaps between pointer events", () => {
    const map = filled(200, 20, 0);
    new D.Stroke(map, 255, 3, 1).to(5, 10).to(195, 10);
    for (let x = 5; x <= 195; x++) assert.equal(map.pick(x, 10), 255, "gap at x=" + x);
});

test("the eraser is a stroke towards black", () => {
    const map = filled(20, 20, 255);
    new D.Stroke(map, 0, 4, 1).to(10, 10);
    assert.equal(map.pick(10, 10), 0);
    assert.equal(map.pick(1, 1), 255);
});

test("linear gradient: its end values at its ends, constant across, flat beyond", () => {
    const map = new D.GreyMap(101, 7);
    D.linearGradient(map, 0.5, 3, 100.5, 3, 0, 255);
    assert.equal(map.pick(0, 0), 0);
    assert.equal(map.pick(100, 6), 255);
    assert.equal(map.pick(50, 0), 128);
    for (let x = 1; x < 101; x++) assert.ok(map.pick(x, 3) >= map.pick(x - 1, 3));
    for (let y = 0; y < 7; y++) assert.equal(map.pick(30, y), map.pick(30, 0));
    D.linearGradient(map, 20.5, 3, 80.5, 3, 255, 40);
    assert.equal(map.pick(5, 3), 255);
    assert.equal(map.pick(95, 3), 40);
});

test("radial gradient: its centre value at the centre, the end value at and beyond the radius", () => {
    const map = new D.GreyMap(64, 64);
    D.radialGradient(map, 32.5, 32.5, 52.5, 32.5, 255, 0);
    assert.equal(map.pick(32, 32), 255);
    assert.equal(map.pick(0, 0), 0);
    assert.equal(map.pick(32, 52), 0);
    assert.equal(map.pick(42, 32), 128); // 255 * (1 - 10/20) = 127.5, rounded
    assert.equal(map.pick(22, 32), map.pick(42, 32)); // symmetric about the centre
});

test("bucket fill fills the connected region and stops at other values", () => {
    const map = filled(20, 20, 0);
    for (let y = 0; y < 20; y++) map.data[y * 20 + 10] = 255; // a wall
    const n = D.floodFill(map, 2, 2, 128, 0);
    assert.equal(n, 200);
    assert.equal(map.pick(9, 19), 128);
    assert.equal(map.pick(10, 5), 255);
    assert.equal(map.pick(15, 5), 0);
    assert.equal(D.floodFill(map, 15, 5, 77, 127), 180, "the wall (255) is beyond the tolerance");
    assert.equal(D.floodFill(map, 15, 5, 77, 255), 400, "a tolerance of 255 reaches across the wall");
    assert.equal(D.floodFill(map, -1, 5, 1), 0);
});

test("bucket fill of a large map does not overflow the stack", () => {
    const map = filled(1024, 1024, 3);
    assert.equal(D.floodFill(map, 0, 0, 9), 1024 * 1024);
});

test("undo and redo walk back and forth through at least 30 changes", () => {
    const history = new D.History(30);
    let map = filled(4, 4, 0);
    for (let i = 1; i <= 35; i++) {
        history.record(map);
        map = filled(4, 4, i);
    }
    for (let i = 34; i >= 5; i--) {
        map = history.undo(map);
        assert.equal(map.pick(0, 0), i);
    }
    assert.equal(history.undo(map), null, "older than the limit is gone");
    for (let i = 6; i <= 35; i++) {
        map = history.redo(map);
        assert.equal(map.pick(0, 0), i);
    }
    assert.equal(history.redo(map), null);
});

test("a change after an undo drops the redo branch", () => {
    const history = new D.History();
    let map = filled(2, 2, 1);
    history.record(map);
    map = filled(2, 2, 2);
    map = history.undo(map);
    history.record(map);
    map = filled(2, 2, 3);
    assert.equal(history.canRedo(), false);
    assert.equal(history.undo(map).pick(0, 0), 1);
});

test("invert and clear", () => {
    const map = new D.GreyMap(3, 1, new Uint8ClampedArray([0, 100, 255]));
    assert.deepEqual(Array.from(map.clone().invert().data), [255, 155, 0]);
    assert.deepEqual(Array.from(map.fill(0).data), [0, 0, 0]);
});

test("reading pixels: luminance times alpha, as the server reads an upload; a mask layer by its alpha", () => {
    const rgba = new Uint8ClampedArray([255, 255, 255, 255, 255, 0, 0, 255, 200, 200, 200, 0, 128, 128, 128, 128]);
    assert.deepEqual(Array.from(D.GreyMap.fromRGBA(4, 1, rgba).data), [255, 76, 0, 64]);
    assert.deepEqual(Array.from(D.GreyMap.fromAlpha(4, 1, rgba).data), [255, 255, 0, 128]);
    const grey = new D.GreyMap(2, 1, new Uint8ClampedArray([7, 250]));
    assert.deepEqual(Array.from(D.GreyMap.fromRGBA(2, 1, grey.toRGBA()).data), [7, 250]);
});

test("rescaling keeps flat regions flat and lands on the new size", () => {
    const map = filled(64, 32, 0);
    D.linearGradient(map, 0, 0, 64, 0, 0, 255);
    const big = map.resized(128, 64);
    assert.equal(big.width, 128);
    assert.equal(big.height, 64);
    assert.ok(Math.abs(big.pick(64, 10) - map.pick(32, 5)) <= 4);
    assert.ok(filled(10, 10, 77).resized(33, 7).data.every((v) => v === 77));
});

test("zooming keeps the point under the pointer in place; fit centres the image", () => {
    const view = D.fitView(1000, 500, 400, 400);
    assert.equal(view.scale, 0.4);
    assert.deepEqual([view.x, view.y], [0, 100]);
    const before = D.toImage(view, 123, 234);
    const zoomed = D.zoomAt(view, 2.5, 123, 234);
    const after = D.toImage(zoomed, 123, 234);
    assert.ok(Math.abs(before[0] - after[0]) < 1e-9 && Math.abs(before[1] - after[1]) < 1e-9);
    assert.equal(zoomed.scale, 1);
});

test("shortcuts: the editor's letters, Ctrl+Z/Y, and nothing the WebUI uses", () => {
    assert.equal(D.shortcut({key: "b"}), "brush");
    assert.equal(D.shortcut({key: "E"}), "eraser");
    assert.equal(D.shortcut({key: "z", ctrlKey: true}), "undo");
    assert.equal(D.shortcut({key: "Z", ctrlKey: true, shiftKey: true}), "redo");
    assert.equal(D.shortcut({key: "y", ctrlKey: true}), "redo");
    assert.equal(D.shortcut({key: "0"}), "fit");
    assert.equal(D.shortcut({key: "0", ctrlKey: true}), null, "Ctrl+0 stays the browser's zoom reset");
    for (const ev of [{key: "Enter", ctrlKey: true}, {key: "Enter", altKey: true}, {key: "Escape"},
        {key: "ArrowUp", ctrlKey: true}, {key: "s", ctrlKey: true}, {key: "b", altKey: true}]) {
        assert.equal(D.shortcut(ev), null, JSON.stringify(ev));
    }
});

test("a size change is reported with what to do", () => {
    const map = filled(64, 48, 0);
    assert.equal(D.sizeMismatch(map, 64, 48), null);
    assert.match(D.sizeMismatch(map, 96, 48), /64x48 .* 96x48.*rescale.*clear/);
});

test("preview decoding: held at call k is free_call > k", () => {
    const free = [0, 1, 2, 3, 3, 0];
    const bytes = Buffer.alloc(12);
    free.forEach((v, i) => bytes.writeUInt16LE(v, 2 * i));
    const json = {
        width: 3, height: 2, calls: 3, call_levels: [14.6, 7, 1.5],
        map: Buffer.from([255, 170, 85, 0, 0, 255]).toString("base64"), free_call: bytes.toString("base64"),
    };
    const p = D.decodePreview(json);
    assert.deepEqual(Array.from(p.free), free);
    assert.deepEqual(Array.from(p.map), [255, 170, 85, 0, 0, 255]);
    assert.deepEqual(Array.from(D.heldAt(p, 0)), [0, 1, 1, 1, 1, 0]);
    assert.deepEqual(Array.from(D.heldAt(p, 2)), [0, 0, 0, 1, 1, 0]);
    assert.equal(D.callCaption(json, 1), "Model call 2 of 3 (noise level 7.00)");
});

test("preview request: Resize by scales the init image, inpaint fields only with a mask", () => {
    const controls = {
        settings: {mode: "Change map"}, initWidth: 640, initHeight: 480, width: 512, height: 512, resizeTab: "to",
        resizeMode: 1, steps: 30, strength: 0.6, sampler: "Euler a", scheduler: "Karras", mask: null,
        maskBlur: 4, onlyMasked: true, padding: 32, scale: 1.5,
    };
    const to = D.previewRequest(controls);
    assert.deepEqual([to.width, to.height, to.resize_mode, to.steps, to.sampler_name], [512, 512, 1, 30, "Euler a"]);
    assert.equal("mask" in to || "only_masked" in to, false);
    const by = D.previewRequest({...controls, resizeTab: "by", mask: "data:image/png;base64,AA=="});
    assert.deepEqual([by.width, by.height], [960, 720]);
    assert.deepEqual([by.mask_blur, by.only_masked, by.padding, by.mask_invert], [4, true, 32, false]);
});

test("a map source needs no painted map, and only the sources that read pixels send the init image", () => {
    for (const painted of ["Painted or uploaded", "painted", "", undefined]) assert.equal(D.madeMap(painted), false);
    for (const made of ["Brightness", "luminance", "Colour range", "mask edge"]) assert.equal(D.madeMap(made), true);
    assert.equal(D.sourceReadsImage("Brightness"), true);
    assert.equal(D.sourceReadsImage("Near edges"), true);
    assert.equal(D.sourceReadsImage("Inpaint mask, from its edge in"), false);
    assert.equal(D.sourceReadsImage("Painted or uploaded"), false);
    const base = {settings: {}, initWidth: 8, initHeight: 8, width: 8, height: 8, steps: 4, strength: 0.5};
    assert.equal("init_image" in D.previewRequest(base), false);
    assert.equal(D.previewRequest({...base, initImage: "data:image/png;base64,AA=="}).init_image,
        "data:image/png;base64,AA==");
});
