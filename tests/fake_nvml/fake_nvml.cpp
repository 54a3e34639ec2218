// Placeholder replaced by the fake NVML implementation.
extern "C" int memscope_fake_nvml_placeholder() { return 0; }
