// Load- and config-time errors as values: where (file:line) and what, in words
// an operator can act on. Never used on the hot path.
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace vane {

struct Error {
  std::string file;
  int line = 0;
  std::string message;

  std::string to_string() const {
    if (file.empty()) return message;
    return line > 0 ? file + ":" + std::to_string(line) + ": " + message : file + ": " + message;
  }
};

// A value or the Error that prevented it (std::expected arrives with C++23).
template <class T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}
  Result(Error error) : error_(std::move(error)) {}
  explicit operator bool() const { return value_.has_value(); }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }
  T* operator->() { return &*value_; }
  T take() { return std::move(*value_); }
  const Error& error() const { return error_; }

 private:
  std::optional<T> value_;
  Error error_;
};

}  // namespace vane
