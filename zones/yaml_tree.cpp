#include "yaml_tree.h"

#include <yaml-cpp/eventhandler.h>

#include <sstream>

namespace vane::yaml {

YAML::NodeType::value Node::Type() const {
  check_valid();
  return idx_ == kEmpty ? YAML::NodeType::Null : doc_->nodes_[idx_].type;
}

YAML::Mark Node::Mark() const {
  check_valid();
  return idx_ == kEmpty ? YAML::Mark::null_mark() : doc_->nodes_[idx_].mark;
}

const std::string& Node::Scalar() const {
  static const std::string empty;
  return IsScalar() ? doc_->scalars_[doc_->nodes_[idx_].first] : empty;
}

size_t Node::size() const {
  switch (Type()) {
    case YAML::NodeType::Sequence: return doc_->nodes_[idx_].count;
    case YAML::NodeType::Map: return doc_->nodes_[idx_].count / 2;
    default: return 0;
  }
}

const Node Node::operator[](std::string_view key) const {
  switch (Type()) {
    case YAML::NodeType::Scalar: throw YAML::BadSubscript(Mark(), std::string(key));
    case YAML::NodeType::Map: {
      const Doc::Data& m = doc_->nodes_[idx_];
      for (uint32_t k = m.first; k < m.first + m.count; k += 2) {
        const Doc::Data& kd = doc_->nodes_[doc_->kids_[k]];
        if (kd.type == YAML::NodeType::Scalar && doc_->scalars_[kd.first] == key) return Node(doc_, doc_->kids_[k + 1]);
      }
      return Node(key);
    }
    default: return Node(key);
  }
}

const Node Node::operator[](size_t i) const {
  if (Type() == YAML::NodeType::Scalar) throw YAML::BadSubscript(Mark(), i);
  if (!IsSequence() || i >= size()) return Node(std::to_string(i));
  return Node(doc_, doc_->kids_[doc_->nodes_[idx_].first + i]);
}

std::string Node::as_string() const {
  if (IsNull()) return "null";  // yaml-cpp's answer
  if (!IsScalar()) throw YAML::TypedBadConversion<std::string>(Mark());
  return Scalar();
}

Node::iterator Node::begin() const {
  if (!valid_ || idx_ == kEmpty) return iterator(nullptr, 0, false);
  const Doc::Data& d = doc_->nodes_[idx_];
  bool collection = d.type == YAML::NodeType::Sequence || d.type == YAML::NodeType::Map;
  return iterator(doc_, collection ? d.first : 0, d.type == YAML::NodeType::Map);
}

Node::iterator Node::end() const {
  if (!valid_ || idx_ == kEmpty) return iterator(nullptr, 0, false);
  const Doc::Data& d = doc_->nodes_[idx_];
  bool collection = d.type == YAML::NodeType::Sequence || d.type == YAML::NodeType::Map;
  return iterator(doc_, collection ? d.first + d.count : 0, d.type == YAML::NodeType::Map);
}

Node::Entry Node::iterator::operator*() const {
  Entry e;
  if (map_) {
    e.first = Node(doc_, doc_->kids_[at_]);
    e.second = Node(doc_, doc_->kids_[at_ + 1]);
  } else {
    static_cast<Node&>(e) = Node(doc_, doc_->kids_[at_]);
  }
  return e;
}

// Events to nodes. A collection's children gather on one stack (`pending_`)
// and move to the document's child list, contiguous, when it ends.
class Builder : public YAML::EventHandler {
 public:
  Builder(Doc& d, const Doc::ItemHook* hook) : d_(d), hook_(hook) {}

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    add(make(mark, YAML::NodeType::Null, anchor));
  }
  void OnAlias(const YAML::Mark&, YAML::anchor_t anchor) override { add(anchor < anchors_.size() ? anchors_[anchor] : make({}, YAML::NodeType::Null, 0)); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor, const std::string& value) override {
    uint32_t i = make(mark, YAML::NodeType::Scalar, anchor);
    d_.nodes_[i].first = static_cast<uint32_t>(d_.scalars_.size());
    d_.scalars_.push_back(value);
    add(i);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(make(mark, YAML::NodeType::Sequence, anchor));
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor, YAML::EmitterStyle::value) override {
    open(make(mark, YAML::NodeType::Map, anchor));
  }
  void OnMapEnd() override { close(); }

 private:
  struct Open {
    uint32_t node;
    size_t start;  // in pending_
  };

  uint32_t make(const YAML::Mark& mark, YAML::NodeType::value type, YAML::anchor_t anchor) {
    uint32_t i = static_cast<uint32_t>(d_.nodes_.size());
    d_.nodes_.push_back(Doc::Data{mark, type, 0, 0});
    if (anchor != YAML::NullAnchor) {
      if (anchors_.size() <= anchor) anchors_.resize(anchor + 1, 0);
      anchors_[anchor] = i;
    }
    return i;
  }
  void open(uint32_t i) {
    // The hooked list: a sequence that is the value of the root map's key.
    if (hook_ && open_.size() == 1 && d_.nodes_[open_[0].node].type == YAML::NodeType::Map &&
        (pending_.size() - open_[0].start) % 2 == 1 && d_.nodes_[i].type == YAML::NodeType::Sequence) {
      const Doc::Data& k = d_.nodes_[pending_.back()];
      if (k.type == YAML::NodeType::Scalar && d_.scalars_[k.first] == hook_->key) hooked_ = i;
    }
    open_.push_back(Open{i, pending_.size()});
  }
  void close() {
    Open o = open_.back();
    open_.pop_back();
    Doc::Data& n = d_.nodes_[o.node];
    n.first = static_cast<uint32_t>(d_.kids_.size());
    n.count = static_cast<uint32_t>(pending_.size() - o.start);
    d_.kids_.insert(d_.kids_.end(), pending_.begin() + static_cast<ptrdiff_t>(o.start), pending_.end());
    pending_.resize(o.start);
    add(o.node);
  }
  void add(uint32_t i) {
    if (open_.empty()) return;  // the root: node 0
    pending_.push_back(i);
    if (open_.back().node == hooked_) hook_->fn(Node(&d_, i));
  }

  Doc& d_;
  const Doc::ItemHook* hook_;
  std::vector<Open> open_;
  std::vector<uint32_t> pending_;
  std::vector<uint32_t> anchors_;
  uint32_t hooked_ = UINT32_MAX;
};

void Doc::parse(const std::string& text, const ItemHook* hook) {
  nodes_.clear();
  kids_.clear();
  scalars_.clear();
  std::istringstream in(text);
  YAML::Parser parser(in);
  Builder b(*this, hook);
  parser.HandleNextDocument(b);
}

}  // namespace vane::yaml
