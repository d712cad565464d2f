// The plan's rewrite passes after lowering (see engine/plan_passes.h).
#include "engine/plan_passes.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "core/error.h"

namespace yoloc {
namespace engine {

// Drops buffer `b` (no op may use it any more) and renumbers the later ones.
void erase_buffer(Plan& plan, int32_t b) {
    plan.buffers.erase(plan.buffers.begin() + b);
    auto fix = [&](int32_t& x) {
        if (x > b) --x;
    };
    fix(plan.input_buf);
    for (auto& o : plan.output_bufs) fix(o);
    for (auto& op : plan.ops) {
        for (auto& v : op.in) fix(v.buf);
        fix(op.out.buf);
        for (auto& v : op.more_out) fix(v.buf);
    }
}

// The stem conv reads the NCHW float32 input itself when InputPack's only reader is
// one plain conv over a few channels (YOLOv8's 3-channel stem): one kernel and one
// buffer fewer, and the stem's output is written without the packed copy in between.
void fold_input_pack(Plan& plan) {
    if (plan.ops.empty() || plan.ops[0].kind != OpKind::InputPack) return;
    const int32_t packed = plan.ops[0].out.buf;
    const int64_t c = plan.input_shape[1];
    if (c > kMaxStemChannels || plan.ops[0].out.c_off != 0 || plan.buffers[size_t(packed)].shape[3] != c) return;
    int readers = 0;
    size_t reader = 0;
    for (size_t i = 1; i < plan.ops.size(); ++i) {
        const PlanOp& op = plan.ops[i];
        bool writes = op.out.buf == packed;
        for (const auto& v : op.more_out) writes = writes || v.buf == packed;
        if (writes) return;
        for (const auto& v : op.in)
            if (v.buf == packed) {
                ++readers;
                reader = i;
            }
    }
    for (int32_t o : plan.output_bufs)
        if (o == packed) return;
    if (readers != 1) return;
    PlanOp& conv = plan.ops[reader];
    if (conv.kind != OpKind::Conv || conv.in.size() != 1 || conv.group != 1 || conv.in[0].c_off != 0 ||
        conv.in[0].c != c)
        return;
    conv.in[0] = View{plan.input_buf, 0, c};
    plan.ops.erase(plan.ops.begin());
    erase_buffer(plan, packed);
}

// Horizontal fusion (as TensorRT does): two convs that read the same view with the same
// window, both plain (groups 1, no residual, the same SiLU and, for INT8, the same input
// scale), each writing a buffer of its own, become one conv whose output channels are
// the first's then the second's, in one new buffer that their readers see as two views.
// YOLOv8's Detect heads start this way at every level (box cv2.x.0 and class cv3.x.0):
// one kernel instead of two, with wider tiles, and one op fewer beside the neck.
void fuse_sibling_convs(Plan& plan) {
    auto whole_own = [&](const PlanOp& op) {
        const PlanBuffer& b = plan.buffers[size_t(op.out.buf)];
        if (b.kind != BufferKind::Activation || op.out.c_off != 0 || b.shape.size() != 4 || b.shape[3] != op.out.c)
            return false;
        for (int32_t o : plan.output_bufs)
            if (o == op.out.buf) return false;
        int writers = 0;
        for (const PlanOp& q : plan.ops) {
            writers += q.out.buf == op.out.buf;
            for (const auto& v : q.more_out) writers += v.buf == op.out.buf;
        }
        return writers == 1;
    };
    auto plain = [&](const PlanOp& op) {
        return op.kind == OpKind::Conv && op.in.size() == 1 && op.group == 1 && op.res_scale == 0.f &&
               plan.buffers[size_t(op.in[0].buf)].kind == BufferKind::Activation && whole_own(op);
    };
    bool merged = true;
    while (merged) {
        merged = false;
        for (size_t i = 0; i < plan.ops.size() && !merged; ++i) {
            if (!plain(plan.ops[i])) continue;
            for (size_t j = i + 1; j < plan.ops.size() && !merged; ++j) {
                const PlanOp& a = plan.ops[i];
                const PlanOp& b = plan.ops[j];
                if (!plain(b) || b.in[0].buf != a.in[0].buf || b.in[0].c_off != a.in[0].c_off || b.in[0].c != a.in[0].c ||
                    b.kh != a.kh || b.kw != a.kw || b.sh != a.sh || b.sw != a.sw || b.ph != a.ph || b.pw != a.pw ||
                    b.silu != a.silu || b.in_scale != a.in_scale || b.int8() != a.int8())
                    continue;
                const PlanBuffer& ba = plan.buffers[size_t(a.out.buf)];
                const PlanBuffer& bb = plan.buffers[size_t(b.out.buf)];
                if (ba.elem_bytes != bb.elem_bytes || ba.shape[0] != bb.shape[0] || ba.shape[1] != bb.shape[1] ||
                    ba.shape[2] != bb.shape[2])
                    continue;
                const int64_t m1 = a.out.c, m2 = b.out.c, k = a.w_count / m1;
                PlanOp f = a;
                f.name = a.name + " & " + b.name;
                f.tactic = 0;
                f.w_off = int64_t(plan.weights.size());
                f.w_count = k * (m1 + m2);
                std::vector<float> w(size_t(f.w_count));
                for (int64_t r = 0; r < k; ++r) {
                    for (int64_t m = 0; m < m1; ++m) w[size_t(r * (m1 + m2) + m)] = plan.weights[size_t(a.w_off + r * m1 + m)];
                    for (int64_t m = 0; m < m2; ++m)
                        w[size_t(r * (m1 + m2) + m1 + m)] = plan.weights[size_t(b.w_off + r * m2 + m)];
                }
                plan.weights.insert(plan.weights.end(), w.begin(), w.end());
                auto append = [&](int64_t off1, int64_t off2) {
                    std::vector<float> v(plan.weights.begin() + off1, plan.weights.begin() + off1 + m1);
                    v.insert(v.end(), plan.weights.begin() + off2, plan.weights.begin() + off2 + m2);
                    const int64_t at = int64_t(plan.weights.size());
                    plan.weights.insert(plan.weights.end(), v.begin(), v.end());
                    return at;
                };
                f.b_off = append(a.b_off, b.b_off);
                f.b_count = m1 + m2;
                if (a.int8()) {
                    f.s_off = append(a.s_off, b.s_off);
                    f.s_count = m1 + m2;
                }
                PlanBuffer nb = ba;
                nb.name = ba.name + " & " + bb.name;
                nb.shape[3] = m1 + m2;
                plan.buffers.push_back(nb);
                const int32_t fb = int32_t(plan.buffers.size() - 1), oa = a.out.buf, ob = b.out.buf;
                f.out = View{fb, 0, m1 + m2};
                for (auto& op : plan.ops)
                    for (auto& v : op.in) {
                        if (v.buf == oa) v.buf = fb;
                        else if (v.buf == ob) {
                            v.buf = fb;
                            v.c_off += m1;
                        }
                    }
                plan.ops[i] = f;
                plan.ops.erase(plan.ops.begin() + std::ptrdiff_t(j));
                erase_buffer(plan, std::max(oa, ob));
                erase_buffer(plan, std::min(oa, ob));
                --plan.stats.convs;
                if (f.silu) --plan.stats.convs_silu;
                if (f.int8()) --plan.stats.convs_int8;
                ++plan.stats.convs_fused_siblings;
                merged = true;
            }
        }
    }
    if (plan.stats.convs_fused_siblings == 0) return;
    // Keep only the weights some op still uses (the fused convs' old copies go).
    std::vector<float> kept;
    auto move = [&](int64_t& off, int64_t count) {
        if (off < 0) return;
        const int64_t at = int64_t(kept.size());
        kept.insert(kept.end(), plan.weights.begin() + off, plan.weights.begin() + off + count);
        off = at;
    };
    for (auto& op : plan.ops) {
        move(op.w_off, op.w_count);
        move(op.b_off, op.b_count);
        move(op.s_off, op.s_count);
    }
    plan.weights.swap(kept);
}

// INT8 storage (see plan.h). Every channel of every activation buffer is a slot;
// MaxPool / Resize / Copy tie their input slots to their output slots (same values,
// so the same storage). A slot class is int8 when its readers all ask for one scale
// and nothing forces float (a float reader or writer); a buffer is int8 when all its
// slots are. Iterated: a float buffer forces the classes of all its slots to float.
void assign_int8_storage(Plan& plan) {
    const size_t nb = plan.buffers.size();
    std::vector<int64_t> base(nb + 1, 0);
    for (size_t b = 0; b < nb; ++b) {
        const PlanBuffer& pb = plan.buffers[b];
        base[b + 1] = base[b] + (pb.kind == BufferKind::Activation ? pb.shape[3] : 0);
    }
    std::vector<int64_t> parent(static_cast<size_t>(base[nb]));
    for (size_t i = 0; i < parent.size(); ++i) parent[i] = int64_t(i);
    auto root = [&](int64_t i) -> int64_t {
        while (parent[size_t(i)] != i) i = parent[size_t(i)] = parent[size_t(parent[size_t(i)])];
        return i;
    };
    auto act = [&](const View& v) { return plan.buffers[size_t(v.buf)].kind == BufferKind::Activation; };
    auto slot = [&](const View& v, int64_t ch) { return base[size_t(v.buf)] + v.c_off + ch; };
    auto link = [&](const View& a, const View& b) {
        for (int64_t ch = 0; ch < a.c; ++ch) {
            int64_t ra = root(slot(a, ch)), rb = root(slot(b, ch));
            if (ra != rb) parent[size_t(ra)] = rb;
        }
    };
    for (const auto& op : plan.ops) {
        if (op.kind == OpKind::MaxPool || op.kind == OpKind::Resize || op.kind == OpKind::Copy) {
            link(op.in[0], op.out);
            for (const auto& v : op.more_out) link(op.in[0], v);
        }
    }
    // Per class: the scale its readers ask for (0: none yet), and whether it must be float.
    std::vector<float> want(parent.size(), 0.f);
    std::vector<char> is_float(parent.size(), 0);
    auto force = [&](const View& v) {
        if (!act(v)) return;
        for (int64_t ch = 0; ch < v.c; ++ch) is_float[size_t(root(slot(v, ch)))] = 1;
    };
    auto require = [&](const View& v, float s) {
        for (int64_t ch = 0; ch < v.c; ++ch) {
            const size_t r = size_t(root(slot(v, ch)));
            if (want[r] == 0.f)
                want[r] = s;
            else if (want[r] != s)
                is_float[r] = 1;  // two scales: keep float (the readers quantize on load)
        }
    };
    for (const auto& op : plan.ops) {
        switch (op.kind) {
            case OpKind::Conv:
                if (!act(op.in[0])) {
                } else if (op.int8()) {
                    require(op.in[0], op.in_scale);
                } else {
                    force(op.in[0]);
                }
                if (op.in.size() == 2) {
                    if (op.int8() && op.res_scale > 0.f)
                        require(op.in[1], op.res_scale);
                    else
                        force(op.in[1]);
                }
                if (!op.int8()) force(op.out);
                break;
            case OpKind::MaxPool:
            case OpKind::Resize:
            case OpKind::Copy:
                break;  // linked above
            default:  // InputPack, FakeQuant, Detect, OutputUnpack: float in and out
                for (const auto& v : op.in) force(v);
                force(op.out);
                break;
        }
    }
    std::vector<char> int8_buf(nb, 0);
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t b = 0; b < nb; ++b) {
            if (plan.buffers[b].kind != BufferKind::Activation) continue;
            bool ok = true;
            for (int64_t i = base[b]; i < base[b + 1] && ok; ++i) {
                const size_t r = size_t(root(i));
                ok = !is_float[r] && want[r] > 0.f;
            }
            if (ok) {
                int8_buf[b] = 1;
                continue;
            }
            for (int64_t i = base[b]; i < base[b + 1]; ++i) {
                const size_t r = size_t(root(i));
                if (!is_float[r]) {
                    is_float[r] = 1;
                    changed = true;
                }
            }
            int8_buf[b] = 0;
        }
    }
    for (size_t b = 0; b < nb; ++b)
        if (int8_buf[b]) {
            plan.buffers[b].elem_bytes = 1;
            ++plan.stats.int8_buffers;
        }
    for (auto& op : plan.ops) {
        if (op.kind != OpKind::Conv || !int8_buf[size_t(op.out.buf)]) continue;
        op.ys_off = int64_t(plan.weights.size());
        op.ys_count = op.out.c;
        for (int64_t ch = 0; ch < op.out.c; ++ch) plan.weights.push_back(want[size_t(root(slot(op.out, ch)))]);
    }
}


}  // namespace engine
}  // namespace yoloc
