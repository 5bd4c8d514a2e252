// Optimizers over named parameters: SGD with momentum and Adam.
//
// Row-sparse gradients (embedding tables with sparse = true) get a row update: only the rows the
// batch touched change. For Adam this is "lazy Adam", the semantics of torch.optim.SparseAdam: a
// touched row's moments decay and update as in dense Adam; an untouched row's parameters and moments
// are left exactly as they were (its moments do not decay that step); bias correction uses the
// optimizer's global step count t. With momentum SGD a touched row's buffer updates; others keep theirs.
// A parameter that has both a dense and a sparse gradient (a table also used outside an embedding
// lookup) is updated once, densely, with the sum of both.
//
// State (moments, momentum buffers) is allocated with the parameters, on their device, so create the
// optimizer after moving the model.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace musicrec {

class Optimizer {
 public:
  using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
  explicit Optimizer(NamedTensors params) : params_(std::move(params)) {}
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  virtual std::string kind() const = 0;
  // Named state tensors for checkpoints ("m/<param>", "v/<param>", "momentum/<param>").
  virtual NamedTensors state() const = 0;
  // Copies saved state in; every state tensor must be present with its shape.
  void load_state(const std::map<std::string, Tensor>& saved);
  void zero_grad();
  int64_t steps() const { return steps_; }
  void set_steps(int64_t s) { steps_ = s; }
  double lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }

 protected:
  NamedTensors params_;
  int64_t steps_ = 0;
  double lr_ = 1e-3;
};

struct SgdOptions {
  double lr = 0.01, momentum = 0.9, weight_decay = 0.0;
};

class SGD : public Optimizer {
 public:
  SGD(NamedTensors params, SgdOptions opt = {});
  void step() override;
  std::string kind() const override { return "sgd"; }
  NamedTensors state() const override;

 private:
  SgdOptions opt_;
  std::vector<Tensor> momentum_;
};

struct AdamOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

class Adam : public Optimizer {
 public:
  Adam(NamedTensors params, AdamOptions opt = {});
  void step() override;
  std::string kind() const override { return "adam"; }
  NamedTensors state() const override;

 private:
  AdamOptions opt_;
  std::vector<Tensor> m_, v_;
};

}  // namespace musicrec
