// pruning/sparse_pattern.h — random sparse patterns built directly in CSR, initialisation scaled by
// each unit's actual fan-in, and SET's drop-and-regrow step. Nothing here allocates a dense
// rows×cols array: time and memory are O(nnz + rows + cols) (O(nnz log nnz) where a sort is named),
// so layers of 333333×333333 at a few million nonzeros are fine.
//   sample_pattern:         exactly nnz positions drawn uniformly without replacement (values 0)
//   init_by_fan_in:         values (and bias) by the kind of models::Init, with each row's own nnz as
//                           its fan-in
//   smallest_nonzeros:      the k nonzeros of smallest |value|
//   change_pattern:         drop some nonzeros, add new positions; the new CSR and where each entry
//                           came from
//   drop_and_regrow_random: SET's update (Mocanu et al. 2018): drop the smallest, regrow as many at random
//   drop_and_regrow_by_gradient: RigL's update (Evci et al. 2020): drop the smallest, regrow where
//                           the dense gradient is largest, computed a panel of rows at a time
//   carry_over:             moves per-nonzero arrays (values, optimizer state) onto a changed pattern
// Every result is a function of the inputs and the Rng's state alone (same seed, same pattern).
// Tests: tests/pruning/test_sparse_pattern.cpp
#pragma once
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "core/rng.h"
#include "kernels/csr.h"
#include "models/builder.h"

namespace st::pruning {

// A rows×cols CSR with exactly nnz nonzeros at positions drawn uniformly from all
// C(rows·cols, nnz) sets (values 0, columns strictly increasing in each row, row_order computed).
// Method: positions (r·cols + c) are drawn i.i.d. uniform (Rng::below, unbiased), sorted and
// de-duplicated, and each further round draws only as many as are still missing. Which set comes out
// is invariant under any permutation of the positions (the draws are, and the rounds depend only on
// how many distinct positions there are), so every nnz-set is exactly equally likely. Above density
// 1/2 the complement (rows·cols − nnz positions) is drawn that way and the pattern is the rest, so
// every round keeps at least half of its draws: expected O(nnz) draws, O(nnz) memory, a radix sort
// (O(nnz) passes over the keys), plus O(rows) for row_ptr and row_order.
// Throws st::Error when rows or cols is negative, nnz < 0, nnz > rows·cols, or nnz > 2^31 − 1
// (CSR offsets are int32).
kernels::CsrMatrix sample_pattern(int rows, int cols, int64_t nnz, Rng& rng);

// Sets w.values (resized to w.nnz()) and bias[0..rows) (when bias is not null) as dense
// models::initialize does for `init`, with fans counted on the pattern instead of the dense shape:
//   fan_in(r)  = nonzeros in row r (each output unit's actual inputs), 1 for an empty row;
//   fan_out(c) = nonzeros in column c (the units input c actually feeds); an entry's column is never
//                empty.
// Per entry (r, c):
//   pytorch          U(±1/√fan_in(r))                bias[r] U(±1/√fan_in(r))
//   kaiming_uniform  U(±√(6/fan_in(r)))              bias 0
//   kaiming_normal   N(0, 2/fan_in(r))               bias 0
//   glorot_uniform   U(±√(6/(fan_in(r)+fan_out(c)))) bias 0
//   glorot_normal    N(0, 2/(fan_in(r)+fan_out(c)))  bias 0
// This is the "scaled by each unit's actual fan-in" rule of sparse-from-scratch training (Evci et al.
// 2020, RigL): a unit with few inputs gets proportionally larger weights, so every unit's
// pre-activation variance is what the dense scheme gives a dense unit. On a full pattern it equals the
// dense scheme for a Linear weight, draw for draw. (A conv weight flattened to (out, in·kh·kw) has
// column nnz ≤ out, while the dense glorot uses fan_out = out·kh·kw.)
// Values are drawn from rng in CSR order, then the pytorch bias in row order. O(nnz + rows + cols).
void init_by_fan_in(kernels::CsrMatrix& w, models::Init init, Rng& rng, float* bias);

// A changed pattern: w is the new CSR (row_order computed), source[k] the index in the old CSR of
// new nonzero k, or -1 for a new position (value 0); dropped = how many old nonzeros are gone.
struct PatternChange {
  kernels::CsrMatrix w;
  std::vector<int64_t> source;
  int64_t dropped = 0;
};

// Indices (ascending, i.e. CSR order) of the k nonzeros of smallest |value|; ties go to the smaller
// index; NaN counts as larger than every number (dropped last). O(nnz) selection + O(k log k).
// Throws st::Error unless 0 ≤ k ≤ nnz.
std::vector<int64_t> smallest_nonzeros(const kernels::CsrMatrix& w, int64_t k);

// w without the nonzeros at CSR indices `drop` (any order, no repeats) and with new zero-valued
// entries at the (row, col) positions `grow` (any order, no repeats, each outside w's pattern or at a
// dropped position). Kept entries keep their values; columns come out sorted. O(nnz + rows) when
// `drop` and `grow` are sorted (a sorted vector is detected), else plus their sort.
// Throws st::Error on an index or position out of range, a repeat, or a grown position that is kept.
PatternChange change_pattern(const kernels::CsrMatrix& w, const std::vector<int64_t>& drop,
                             const std::vector<std::pair<int, int>>& grow);

// SET's update. k = round(fraction · nnz) (half away from zero); the k nonzeros of smallest |value|
// are dropped (smallest_nonzeros), and k positions are grown, drawn uniformly without replacement
// from the positions outside the OLD pattern: neither kept nor just dropped, so no dropped weight
// comes straight back. When fewer than k such positions exist (a nearly full matrix), all of them are
// grown and the rest are drawn uniformly from the dropped positions, which come back as new entries
// (value 0, source -1). nnz is unchanged; a full row simply receives nothing, the draws are over the
// whole matrix. Sampling as in sample_pattern, with the draws that land in the old pattern discarded
// (binary search in their row, done in sorted order); when the old pattern is denser than 1/2 or k
// exceeds half the free positions, the free positions are enumerated row by row instead
// (O(rows·cols) = O(nnz) there) and k of them chosen by a partial Fisher–Yates shuffle.
// O(nnz + k log nnz) expected.
// Throws st::Error unless 0 ≤ fraction ≤ 1.
PatternChange drop_and_regrow_random(const kernels::CsrMatrix& w, double fraction, Rng& rng);

// RigL's update on the sparse form. k = round(fraction · nnz); the k nonzeros of smallest |value|
// are dropped (smallest_nonzeros), and the k positions outside the kept entries (dropped ones
// included, as on a dense mask) with the largest |G| are grown, ties to the lower position
// r·cols + c, NaN counting as the largest (as pruning/select.h). G, the dense gradient, is never
// held whole: gradient(r0, r1, out) writes its rows [r0, r1) to out (row-major, cols floats per
// row) for panels of at most panel_rows rows in increasing order, and a bounded top-k keeps at most
// 2k candidates. Fewer than k free positions: all are grown. grown_grad (when not null) receives G
// at the grown positions in the new CSR's order (the entries whose source is -1).
// Memory: panel_rows · cols floats + O(nnz); time O(rows · cols) for the scan (plus the panels).
// A layer with no nonzero to drop or no free position (full) is left as it is: dropped = 0, w empty.
// Throws st::Error unless 0 ≤ fraction ≤ 1 and panel_rows ≥ 1.
PatternChange drop_and_regrow_by_gradient(const kernels::CsrMatrix& w, double fraction, int panel_rows,
                                          const std::function<void(int r0, int r1, float* out)>& gradient,
                                          std::vector<float>* grown_grad = nullptr);

// out[k] = old_values[source[k]], or 0 where source[k] is -1, for k < source.size().
void carry_over(const std::vector<int64_t>& source, const float* old_values, float* out);

}  // namespace st::pruning
