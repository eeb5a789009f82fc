// Module entry point of ganops._C.
//
// The ops themselves are registered with TORCH_LIBRARY_FRAGMENT in csrc/cuda/*.cpp and are called
// as torch.ops.ganops.<name>; importing this module runs those registrations. The module itself only
// carries BUILD_INFO, a JSON string with what the extension was built against (see setup.py).
#include <Python.h>
#include <torch/library.h>

#ifndef GANOPS_BUILD_INFO
#define GANOPS_BUILD_INFO "{}"
#endif

// Every op file adds to the ganops namespace with TORCH_LIBRARY_FRAGMENT; so does Python (torch.library).
TORCH_LIBRARY_FRAGMENT(ganops, m) {}

static struct PyModuleDef ganops_module = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};

PyMODINIT_FUNC PyInit__C(void) {
  PyObject* module = PyModule_Create(&ganops_module);
  if (module == nullptr) return nullptr;
  if (PyModule_AddStringConstant(module, "BUILD_INFO", GANOPS_BUILD_INFO) != 0) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
