// Response rate limiting (RRL) for UDP, with the semantics operators know
// from Knot, NSD and BIND: a token bucket per (client prefix, answer class)
// refilled every second; over the rate an answer is dropped, or every
// `slip`th one is sent truncated (TC=1) so a real client retries over TCP.
// Per worker, a fixed table allocated once: no allocation, lock or syscall
// per query. A collision in the table only resets a bucket (errs towards
// answering).
#pragma once

#include <cstdint>
#include <memory>

#include "answer.h"
#include "zone.h"

namespace vane::server {

class Rrl {
 public:
  enum class Verdict : uint8_t { kSend, kDrop, kSlip };
  static constexpr size_t kBuckets = 1 << 14;

  Rrl() : table_(new Bucket[kBuckets]()) {}

  // The answer in `resp` (len bytes, to ctx.source) under `p` at `now_s`.
  Verdict check(const zones::RrlParams& p, const QueryContext& ctx, const uint8_t* resp, size_t len, uint32_t now_s);

  // Rewrites a response to its truncated form: header and question, TC=1,
  // no records. Returns the new length.
  static size_t truncate(uint8_t* resp, const QueryContext& ctx);

 private:
  struct Bucket {
    uint64_t key;
    uint32_t second;
    int32_t tokens;
    uint32_t limited;
  };
  std::unique_ptr<Bucket[]> table_;
};

}  // namespace vane::server
