// experiment/setup.h — turns a validated Config into the objects of the layers below: the model spec,
// the data options, optimizer and LR-schedule options, and the process settings (threads, backend,
// device). The only place that knows both the config structs and the lower layers' option structs.
#pragma once
#include "core/lr_schedule.h"
#include "core/optim.h"
#include "data/dataset.h"
#include "experiment/config.h"
#include "models/builder.h"

namespace st::experiment {

models::ModelSpec model_spec(const Config& c);
data::DataOptions data_options(const Config& c);
OptimizerOptions optimizer_options(const Config& c);
LrScheduleOptions lr_schedule_options(const Config& c);

// Sets the OpenMP thread count (0 = all cores), the dense backend and the sparse implementation;
// for device "cuda" checks the device is there (st::cuda::require_device's message when not) and
// that sparse.impl "cusparse" has a real GPU. Throws before anything is written: a run that
// cannot start leaves its folder as it was. Returns the thread count in use.
int apply_process_settings(const Config& c);

// The sample shape and class count (no images) of the config's dataset, as a model trained on it
// expects them; MNIST and Fashion-MNIST are 1x28x28 with 10 classes.
data::Dataset sample_shape(const Config& c);

// The CSR switch threshold for the config's device ("auto" = timed).
double csr_threshold(const Config& c, bool* timed);

}  // namespace st::experiment
