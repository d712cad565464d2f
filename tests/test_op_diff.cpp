// The per-op differential harness (ggml's test-backend-ops, ncnn's test_layer): every case
// of the table (op_diff_cases.h: every op of the op table the GPU plan lowers, several
// shapes each) as a one-node model, run by the reference executor (the oracle), the fast
// CPU executor and the GPU engine plan emulated on the host (build_plan, then the CUDA
// kernels' element functions through the runtime's argument translation). One line per op
// type says how many cases ran, the worst error of each backend and which plan ops the
// node became; any mismatch fails. gpu/test_gpu_op_diff.cpp runs the same table through
// the CUDA plan.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/cpu/executor.h"
#include "engine/cpu/fast_executor.h"
#include "engine/plan.h"
#include "op_diff_cases.h"
#include "plan_emulation.h"

using namespace yoloc;
using namespace yoloc_test;

namespace {

// Ops of the op table that the GPU plan does not lower, and why; the harness checks
// that each still fails to lower, so that the list cannot go stale.
const std::map<std::string, std::string>& not_lowered() {
    static const std::map<std::string, std::string> m = {
        {"Not", "no bool negation in the generic tier"},
        {"Size", "constant folding folds Shape but not Size"},
        {"Upsample", "deprecated since opset 10; exports write Resize"},
    };
    return m;
}

// Cases build_plan refuses for a reason other than the op (by a part of its message),
// and why; each must still occur, so that a fixed limitation leaves the list.
const std::map<std::string, std::string>& known_refusals() {
    static const std::map<std::string, std::string> m = {
        {"has rank 0", "a rank-0 graph output: the plan's buffers have rank 1..6"},
        {"ConvTranspose with dilations", "a dilated ConvTranspose (no export has one)"},
    };
    return m;
}

// The plan ops node `node` became (the adapters' ops are not counted): "Conv",
// "Generic Binary", ...
std::set<std::string> plan_ops_of_node(const engine::Plan& p) {
    std::set<std::string> kinds;
    for (const auto& op : p.ops) {
        // The node's own ops, its Q -> DQ pair's, and the Const op of a value folded from it.
        const bool mine = op.name.compare(0, 4, "node") == 0 || op.name.compare(0, 9, "fakequant") == 0 ||
                          op.name.compare(0, 14, "const node_out") == 0;
        if (!mine) continue;
        std::string k = engine::op_kind_name(op.kind);
        if (op.kind == engine::OpKind::Generic) k += std::string(" ") + engine::generic_kind_name(engine::GenericKind(op.gop));
        kinds.insert(k);
    }
    return kinds;
}

struct OpReport {
    int cases = 0;
    OpTally fast, plan;
    std::set<std::string> kinds;
    std::map<std::string, int> skipped;  // why cases did not run, and how many
    std::vector<std::string> refused;    // build_plan's errors
};

void note_failure(OpTally& t, const std::string& what) {
    ++t.failed;
    if (t.failures.size() < 4) t.failures.push_back(what);
}

}  // namespace

TEST(OpDiff, EveryLoweredOpMatchesTheReferenceOnTheFastExecutorAndTheEmulatedPlan) {
    const std::vector<OpCase> cases = diff_cases();
    std::map<std::string, OpReport> by_op;
    std::map<std::string, int> refusals_seen;
    for (const OpCase& c : cases) {
        const std::string& op = c.node.op_type;
        OpReport& rep = by_op[op == "QuantizeLinear" ? "QuantizeLinear+DequantizeLinear" : op];
        ++rep.cases;
        DiffModel dm;
        std::string why;
        if (!make_diff_model(c, &dm, &why)) {
            ++rep.skipped[why];
            continue;
        }
        SCOPED_TRACE(c.name);
        const TensorMap in{{"input", dm.input}};
        TensorMap ref;
        try {
            ref = ReferenceExecutor(dm.model).run(in);
        } catch (const Error& e) {
            ADD_FAILURE() << c.name << ": the reference executor cannot run the case's model: " << e.what();
            continue;
        }
        // Fast executor: its own kernels where it has them (convs, pools, sigmoid, softmax),
        // the reference kernels elsewhere; at most 5.7e-8 from the reference here (Softmax).
        const double fast_tol = std::max(c.tol, 1e-6);
        const TensorMap fast = FastExecutor(dm.model, ExecutorOptions{1}).run(in);
        ++rep.fast.ran;
        for (const std::string& o : dm.outputs) {
            const Tensor& f = fast.at(o);
            std::vector<float> fv(size_t(f.numel()));
            for (int64_t i = 0; i < f.numel(); ++i) fv[size_t(i)] = float(f.at_f64(i));
            const double e = f.shape() == ref.at(o).shape() ? diff_error(fv, ref.at(o)) : 1e30;
            rep.fast.worst = std::max(rep.fast.worst, e);
            if (!(e <= fast_tol)) note_failure(rep.fast, c.name + " (" + std::to_string(e) + ")");
        }
        engine::Plan plan;
        try {
            plan = engine::build_plan(dm.model, {});
        } catch (const Error& e) {
            const std::string msg = e.what();
            bool known = false;
            for (const auto& kv : known_refusals())
                if (msg.find(kv.first) != std::string::npos) {
                    known = true;
                    ++refusals_seen[kv.first];
                    ++rep.skipped[kv.second];
                }
            if (!known) rep.refused.push_back(c.name + ": " + msg);
            continue;
        }
        for (const std::string& k : plan_ops_of_node(plan)) rep.kinds.insert(k);
        const std::vector<std::vector<float>> got = emulate_plan(plan, dm.input);
        ++rep.plan.ran;
        for (size_t k = 0; k < dm.outputs.size(); ++k) {
            const Tensor& want = ref.at(dm.outputs[k]);
            const double e = k < got.size() ? diff_error(got[k], want) : 1e30;
            rep.plan.worst = std::max(rep.plan.worst, e);
            if (c.tol == 0 ? e != 0 : !(e <= c.tol)) note_failure(rep.plan, c.name + " (" + std::to_string(e) + ")");
        }
    }

    std::printf("%-34s %5s %5s %9s %5s %9s  %s\n", "op", "cases", "fast", "worst", "plan", "worst", "plan ops");
    for (const auto& kv : by_op) {
        const OpReport& r = kv.second;
        std::string kinds;
        for (const auto& k : r.kinds) kinds += (kinds.empty() ? "" : ", ") + k;
        for (const auto& sk : r.skipped) kinds += "; " + std::to_string(sk.second) + " not run: " + sk.first;
        std::printf("%-34s %5d %5d %9.2g %5d %9.2g  %s\n", kv.first.c_str(), r.cases, r.fast.ran, r.fast.worst,
                    r.plan.ran, r.plan.worst, kinds.c_str());
        for (const auto& f : r.fast.failures) ADD_FAILURE() << kv.first << ": fast executor differs from the reference: " << f;
        for (const auto& f : r.plan.failures) ADD_FAILURE() << kv.first << ": emulated plan differs from the reference: " << f;
        const bool excused = not_lowered().count(kv.first) != 0;
        if (excused) {
            EXPECT_EQ(r.plan.ran, 0) << kv.first << " is listed as not lowered but its plan ran: take it off the list";
            EXPECT_FALSE(r.refused.empty()) << kv.first << " is listed as not lowered but no case of it reached build_plan";
        } else {
            for (const auto& f : r.refused) ADD_FAILURE() << kv.first << ": build_plan refused a case: " << f;
        }
    }
    // Every op of the op table has cases that ran through the plan, or is listed as not lowered.
    for (const std::string& op : supported_ops()) {
        if (op == "QuantizeLinear" || op == "DequantizeLinear") continue;  // the pair, and constants: below
        auto it = by_op.find(op);
        const int ran = it == by_op.end() ? 0 : it->second.plan.ran;
        EXPECT_TRUE(ran > 0 || not_lowered().count(op)) << op << " is in the op table but no case of it ran through "
                                                           "the plan: add cases to op_diff_cases.h";
    }
    for (const auto& kv : known_refusals())
        EXPECT_GT(refusals_seen[kv.first], 0) << "no case was refused for \"" << kv.first << "\" any more: take it off "
                                                 "known_refusals()";
    EXPECT_GT(by_op["QuantizeLinear+DequantizeLinear"].plan.ran, 0);
    EXPECT_GT(by_op["DequantizeLinear"].plan.ran, 0);
}
