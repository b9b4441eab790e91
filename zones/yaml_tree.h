// vane.yaml as a compact tree, built from yaml-cpp's event parser.
//
// YAML::Load gives every node a shared_ptr-held node_data, a std::map-backed
// memory pool and a copy of its mark: for a config that lists 20 000 zones
// that tree costs about as much to build and free as the scan itself. This
// one holds the nodes in three flat vectors and reads the same events, so
// the scanner, its error messages and marks are yaml-cpp's. A Node is a
// handle that reads like YAML::Node for what config.cpp asks of it, with the
// same exceptions (InvalidNode for a missing key's subkey, BadSubscript for
// a scalar's, TypedBadConversion for a failed as<T>).
//
// Doc::parse can also hand over each item of one top-level list as soon as
// it is complete (`zones:`), while the rest of the file is still being read.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace vane::yaml {

class Doc;

class Node {
 public:
  Node() = default;  // defined, null (an empty document's root)

  bool IsDefined() const { return valid_; }
  explicit operator bool() const { return IsDefined(); }
  bool operator!() const { return !IsDefined(); }
  YAML::NodeType::value Type() const;
  bool IsNull() const { return Type() == YAML::NodeType::Null; }
  bool IsScalar() const { return Type() == YAML::NodeType::Scalar; }
  bool IsSequence() const { return Type() == YAML::NodeType::Sequence; }
  bool IsMap() const { return Type() == YAML::NodeType::Map; }

  YAML::Mark Mark() const;
  const std::string& Scalar() const;
  size_t size() const;
  // A map's value for a scalar key; a missing key gives an invalid node:
  // false, and anything else asked of it throws (yaml-cpp's zombie node).
  const Node operator[](std::string_view key) const;
  const Node operator[](size_t i) const;  // a sequence's item
  template <class T>
  T as() const;

  // A sequence's items, or a map's entries (with .first and .second).
  struct Entry;
  class iterator;
  iterator begin() const;
  iterator end() const;

 private:
  friend class Doc;
  friend class Builder;
  static constexpr uint32_t kEmpty = UINT32_MAX;  // the default-constructed null node
  Node(const Doc* d, uint32_t i) : doc_(d), idx_(i) {}
  Node(std::string_view invalid_key) : valid_(false), key_(invalid_key) {}
  void check_valid() const {
    if (!valid_) throw YAML::InvalidNode(key_);
  }
  std::string as_string() const;

  const Doc* doc_ = nullptr;
  uint32_t idx_ = kEmpty;
  bool valid_ = true;
  std::string key_;  // for an invalid node's message
};

struct Node::Entry : Node {
  Node first, second;  // a map's key and value; a sequence's item is the Entry itself
};

class Node::iterator {
 public:
  iterator(const Doc* d, uint32_t at, bool map) : doc_(d), at_(at), map_(map) {}
  Entry operator*() const;
  iterator& operator++() {
    at_ += map_ ? 2 : 1;
    return *this;
  }
  bool operator==(const iterator& o) const { return at_ == o.at_; }
  bool operator!=(const iterator& o) const { return at_ != o.at_; }

 private:
  const Doc* doc_;
  uint32_t at_;  // into the document's child list
  bool map_;
};

class Doc {
 public:
  // Called with each item of the top-level list under `key`, complete, while
  // the parse goes on (the item stays valid: it is part of the document).
  struct ItemHook {
    std::string key;
    std::function<void(const Node&)> fn;
  };
  // Parses the first document of `text`. Throws YAML::ParserException.
  void parse(const std::string& text, const ItemHook* hook = nullptr);
  Node root() const { return nodes_.empty() ? Node() : Node(this, 0); }

 private:
  friend class Node;
  friend class Node::iterator;
  friend class Builder;
  struct Data {
    YAML::Mark mark;
    YAML::NodeType::value type;
    uint32_t first = 0;  // scalar: into scalars_; collection: into kids_ (a map's as key, value pairs)
    uint32_t count = 0;  // children (a map: 2 per entry)
  };
  std::vector<Data> nodes_;
  std::vector<uint32_t> kids_;
  std::vector<std::string> scalars_;
};

template <class T>
T Node::as() const {
  check_valid();
  if constexpr (std::is_same_v<T, std::string>) {
    return as_string();
  } else {
    // yaml-cpp's own conversion of the scalar, so `as` means what it did.
    if (!IsScalar()) throw YAML::TypedBadConversion<T>(Mark());
    try {
      return YAML::Node(Scalar()).as<T>();
    } catch (const YAML::BadConversion&) {
      throw YAML::TypedBadConversion<T>(Mark());
    }
  }
}

}  // namespace vane::yaml
