#!/usr/bin/env node
// Runs an ORIGINAL tfjs graph model (model.json + .bin shards, read from disk)
// on the pure-JavaScript CPU backend and writes its raw output, so the
// converted SavedModel can be checked against it (models/tests, infer/ tests).
//
//   node tfjs_reference.js <model.json> <input.f32> <output.f32> <output-node> <N,H,W,C> [scale,offset]
//
// <input.f32> is little-endian float32 in NHWC order. When scale,offset are
// given the model is fed x*scale+offset computed with tfjs ops (the model's own
// input normalisation, e.g. 0.00784313725490196,-1 = x/127.5-1); the raw
// output tensor <output-node> is written to <output.f32> as little-endian
// float32, and a one-line JSON summary (shape, backend, versions) to stdout.
'use strict';

const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const tfconv = require('@tensorflow/tfjs-converter');

// fileHandler is a tf.io.IOHandler that loads a graph model from local files
// (tfjs-node's file:// handler without the native dependency).
function fileHandler(modelPath) {
  return {
    async load() {
      const model = JSON.parse(fs.readFileSync(modelPath, 'utf8'));
      const dir = path.dirname(modelPath);
      const weightSpecs = [];
      const buffers = [];
      for (const group of model.weightsManifest) {
        weightSpecs.push(...group.weights);
        for (const p of group.paths) buffers.push(fs.readFileSync(path.join(dir, p)));
      }
      const all = Buffer.concat(buffers);
      const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
      return {
        modelTopology: model.modelTopology,
        format: model.format,
        generatedBy: model.generatedBy,
        convertedBy: model.convertedBy,
        signature: model.signature,
        userDefinedMetadata: model.userDefinedMetadata,
        weightSpecs,
        weightData,
      };
    },
  };
}

function readFloat32(file, count) {
  const buf = fs.readFileSync(file);
  if (buf.byteLength !== count * 4) {
    throw new Error(`${file}: ${buf.byteLength} bytes, want ${count * 4} (${count} float32)`);
  }
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = buf.readFloatLE(i * 4);
  return out;
}

function writeFloat32(file, data) {
  const buf = Buffer.alloc(data.length * 4);
  for (let i = 0; i < data.length; i++) buf.writeFloatLE(data[i], i * 4);
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, buf);
  fs.renameSync(tmp, file);
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length < 5 || args.length > 6) {
    process.stderr.write('usage: tfjs_reference.js <model.json> <input.f32> <output.f32> <output-node> <N,H,W,C> [scale,offset]\n');
    process.exit(2);
  }
  const [modelPath, inputPath, outputPath, outputNode, shapeArg, normArg] = args;
  const shape = shapeArg.split(',').map(Number);
  if (shape.length !== 4 || shape.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new Error(`bad input shape ${shapeArg}`);
  }
  await tf.setBackend('cpu');
  await tf.ready();
  const model = await tfconv.loadGraphModel(fileHandler(modelPath));
  const count = shape.reduce((a, b) => a * b, 1);
  const input = tf.tensor4d(readFloat32(inputPath, count), shape, 'float32');
  let fed = input;
  if (normArg) {
    const [scale, offset] = normArg.split(',').map(Number);
    fed = tf.add(tf.mul(input, tf.scalar(scale)), tf.scalar(offset));
  }
  const out = model.execute(fed, outputNode);
  const data = await out.data();
  writeFloat32(outputPath, data);
  process.stdout.write(JSON.stringify({
    output: outputNode,
    shape: out.shape,
    backend: tf.getBackend(),
    tfjs_core: tf.version_core,
    tfjs_converter: tfconv.version_converter,
  }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`tfjs_reference: ${err.stack || err}\n`);
  process.exit(1);
});
