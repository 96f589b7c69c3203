// placeholder until the module lands
namespace dnn {}
