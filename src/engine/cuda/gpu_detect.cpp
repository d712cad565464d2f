// Context::detect: the detector's pre- and post-processing on the GPU around one
// engine launch. Host side only (C++17); the kernels are in prepost.cu.
//
// Per call: each image's BGR bytes and its resize tables go up, one letterbox
// kernel writes the engine input slot, the engine runs (CUDA graph), and per batch
// item: decode (candidates above the threshold, keyed for sorting) -> the candidate
// count comes back (4 bytes; the sort needs it on the host) -> radix sort -> cap at
// max_nms -> class-wise NMS -> gather the first max_det kept, mapped to original
// pixels -> those detections come back. Buffers are sized for the worst case of
// the mode (ensure_candidates) and reused.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "engine/cuda/letterbox_args.h"
#include "engine/cuda/prepost.h"
#include "yoloc/engine.h"

namespace yoloc {
namespace gpu {

namespace {

void ck(cudaError_t e, const char* what) {
    if (e != cudaSuccess) fail("CUDA error in ", what, ": ", cudaGetErrorString(e));
}
#define YOLOC_CUDA(call) ck((call), #call)

template <typename T>
void grow(T*& p, size_t& cap, size_t n) {
    if (n <= cap) return;
    if (p) cudaFree(p);
    p = nullptr;
    cap = 0;
    YOLOC_CUDA(cudaMalloc(reinterpret_cast<void**>(&p), std::max<size_t>(n, 1) * sizeof(T)));
    cap = n;
}

}  // namespace

constexpr int kMaxGpuDet = 2048;  // NMS keeps its boxes in shared memory: 16 bytes each

struct DetectState {
    // Images and resize tables (grown to the largest seen).
    uint8_t* img = nullptr;
    size_t img_cap = 0;
    int* taps_i = nullptr;
    size_t taps_i_cap = 0;
    int16_t* taps_w = nullptr;
    size_t taps_w_cap = 0;
    // Candidates (ensure_candidates).
    int capacity = 0;
    unsigned long long* keys = nullptr;  // sort_capacity(capacity) keys
    unsigned* count = nullptr;
    unsigned char* keep = nullptr;
    cuda::PpDetection* dets = nullptr;
    int* det_count = nullptr;
    // Pinned host side of the small read-backs.
    unsigned* count_h = nullptr;
    int* det_count_h = nullptr;
    cuda::PpDetection* dets_h = nullptr;

    ~DetectState() {
        for (void* p : {static_cast<void*>(img), static_cast<void*>(taps_i), static_cast<void*>(taps_w),
                        static_cast<void*>(keys), static_cast<void*>(count), static_cast<void*>(keep),
                        static_cast<void*>(dets), static_cast<void*>(det_count)})
            if (p) cudaFree(p);
        for (void* p : {static_cast<void*>(count_h), static_cast<void*>(det_count_h), static_cast<void*>(dets_h)})
            if (p) cudaFreeHost(p);
    }

    // Fixed-size buffers, made on the first call.
    void init() {
        YOLOC_CUDA(cudaMalloc(reinterpret_cast<void**>(&count), sizeof(unsigned)));
        YOLOC_CUDA(cudaMalloc(reinterpret_cast<void**>(&dets), size_t(kMaxGpuDet) * sizeof(cuda::PpDetection)));
        YOLOC_CUDA(cudaMalloc(reinterpret_cast<void**>(&det_count), sizeof(int)));
        YOLOC_CUDA(cudaHostAlloc(reinterpret_cast<void**>(&count_h), sizeof(unsigned), cudaHostAllocDefault));
        YOLOC_CUDA(cudaHostAlloc(reinterpret_cast<void**>(&det_count_h), sizeof(int), cudaHostAllocDefault));
        YOLOC_CUDA(cudaHostAlloc(reinterpret_cast<void**>(&dets_h), size_t(kMaxGpuDet) * sizeof(cuda::PpDetection),
                                 cudaHostAllocDefault));
    }

    // Candidate buffers for the worst case of the mode: one per anchor (one label per
    // anchor, 8,400 at 640) or one per anchor and class (multi-label, as in mAP
    // evaluation: 672,000 for 80 classes, ~9 MB with the sort's padding). Grown only
    // when a call needs more, so a detector that never evaluates stays small.
    void ensure_candidates(int n) {
        if (n <= capacity) return;
        if (keys) cudaFree(keys);
        if (keep) cudaFree(keep);
        keys = nullptr;
        keep = nullptr;
        capacity = 0;
        YOLOC_CUDA(cudaMalloc(reinterpret_cast<void**>(&keys), size_t(cuda::sort_capacity(n)) * 8));
        YOLOC_CUDA(cudaMalloc(reinterpret_cast<void**>(&keep), size_t(n)));
        capacity = n;
    }
};

std::vector<std::vector<GpuDetection>> Context::detect(const std::vector<GpuImage>& images,
                                                       const GpuDetectOptions& o) {
    const EngineSummary& s = summary();
    YOLOC_CHECK(s.input_shape.size() == 4 && s.input_shape[1] == 3 && s.input_shape[2] == s.input_shape[3],
                "detect: the engine's input must be [N,3,S,S]; it is [", s.input_shape.size(), " dims]");
    YOLOC_CHECK(!s.output_shapes.empty() && s.output_shapes[0].size() == 3 && s.output_shapes[0][1] > 4,
                "detect: the engine's first output is not YOLOv8's [N, 4+nc, anchors]");
    const int batch = int(s.input_shape[0]), size = int(s.input_shape[2]);
    const int nc = int(s.output_shapes[0][1]) - 4, anchors = int(s.output_shapes[0][2]);
    YOLOC_CHECK(!images.empty() && int(images.size()) <= batch, "detect: got ", images.size(),
                " images for an engine of batch ", batch);
    YOLOC_CHECK(o.max_det > 0 && o.max_det <= kMaxGpuDet, "detect: --max-det must be in 1..", kMaxGpuDet,
                " on the GPU (got ", o.max_det, ")");
    if (!detect_) {
        detect_ = std::make_shared<DetectState>();
        detect_->init();
    }
    DetectState& st = *detect_;
    st.ensure_candidates(o.multi_label ? anchors * nc : anchors);
    cudaStream_t stream = static_cast<cudaStream_t>(stream_handle());
    float* input = static_cast<float*>(device_input());
    const size_t plane3 = size_t(3) * size * size;

    // Letterbox every image into its input slot.
    std::vector<cuda::MapArgs> maps(images.size());
    for (size_t b = 0; b < images.size(); ++b) {
        const GpuImage& im = images[b];
        YOLOC_CHECK(im.bgr && im.width > 0 && im.height > 0 &&
                        int64_t(im.width) * im.height <= kMaxImagePixels,
                    "detect: image ", b, " is empty or too large (", im.width, "x", im.height, ")");
        const cuda::PackedLetterbox pk = cuda::pack_letterbox(im.width, im.height, size);
        const size_t bytes = size_t(im.width) * size_t(im.height) * 3;
        grow(st.img, st.img_cap, bytes);
        YOLOC_CUDA(cudaMemcpyAsync(st.img, im.bgr, bytes, cudaMemcpyHostToDevice, stream));
        if (pk.mode == ResizeTaps::Linear) {
            grow(st.taps_i, st.taps_i_cap, pk.index.size());
            grow(st.taps_w, st.taps_w_cap, pk.weight.size());
            YOLOC_CUDA(cudaMemcpyAsync(st.taps_i, pk.index.data(), pk.index.size() * sizeof(int),
                                       cudaMemcpyHostToDevice, stream));
            YOLOC_CUDA(cudaMemcpyAsync(st.taps_w, pk.weight.data(), pk.weight.size() * sizeof(int16_t),
                                       cudaMemcpyHostToDevice, stream));
        }
        const cuda::LetterboxArgs a = cuda::letterbox_args(pk, st.img, size, st.taps_i, st.taps_w, input + plane3 * b);
        cuda::letterbox(a, stream);
        // The next image reuses the upload buffers: pageable copies are staged, and
        // the stream orders the next upload after this kernel.
        cuda::MapArgs& m = maps[b];
        m.r = pk.info.r;
        m.left = pk.info.left;
        m.top = pk.info.top;
        m.src_w = pk.info.src_w;
        m.src_h = pk.info.src_h;
        YOLOC_CUDA(cudaStreamSynchronize(stream));  // the host tables above go out of scope
    }
    for (size_t b = images.size(); b < size_t(batch); ++b)  // unused slots: zeros
        YOLOC_CUDA(cudaMemsetAsync(input + plane3 * b, 0, plane3 * 4, stream));

    enqueue_async();

    std::vector<std::vector<GpuDetection>> result(images.size());
    const float* out0 = device_output(0);
    for (size_t b = 0; b < images.size(); ++b) {
        const float* pred = out0 + size_t(4 + nc) * anchors * b;
        YOLOC_CUDA(cudaMemsetAsync(st.count, 0, sizeof(unsigned), stream));
        cuda::DecodeArgs d;
        d.pred = pred;
        d.nc = nc;
        d.anchors = anchors;
        d.conf = o.conf_threshold;
        d.multi_label = o.multi_label ? 1 : 0;
        cuda::decode(d, st.keys, st.count, stream);
        YOLOC_CUDA(cudaMemcpyAsync(st.count_h, st.count, sizeof(unsigned), cudaMemcpyDeviceToHost, stream));
        YOLOC_CUDA(cudaStreamSynchronize(stream));
        const int n = int(std::min<unsigned>(*st.count_h, unsigned(st.capacity)));
        if (n == 0) continue;
        cuda::sort_keys_desc(st.keys, n, stream);
        const int k = o.max_nms > 0 ? std::min(n, o.max_nms) : n;
        YOLOC_CUDA(cudaMemsetAsync(st.keep, 0, size_t(k), stream));
        cuda::nms_per_class(pred, nc, anchors, st.keys, k, o.iou_threshold, o.max_det, st.keep, stream);
        cuda::gather(pred, nc, anchors, st.keys, st.keep, k, o.max_det, maps[b], st.dets, st.det_count, stream);
        YOLOC_CUDA(cudaMemcpyAsync(st.det_count_h, st.det_count, sizeof(int), cudaMemcpyDeviceToHost, stream));
        YOLOC_CUDA(cudaMemcpyAsync(st.dets_h, st.dets, size_t(o.max_det) * sizeof(cuda::PpDetection),
                                   cudaMemcpyDeviceToHost, stream));
        YOLOC_CUDA(cudaStreamSynchronize(stream));
        YOLOC_CUDA(cudaGetLastError());
        const int m = std::min(*st.det_count_h, o.max_det);
        result[b].resize(size_t(m));
        for (int i = 0; i < m; ++i) {
            const cuda::PpDetection& p = st.dets_h[i];
            GpuDetection& g = result[b][size_t(i)];
            g.class_id = p.class_id;
            g.conf = p.conf;
            g.x1 = p.x1;
            g.y1 = p.y1;
            g.x2 = p.x2;
            g.y2 = p.y2;
        }
    }
    return result;
}

}  // namespace gpu
}  // namespace yoloc
