// kernels/isa_table.cpp — compiled once per instruction set (kernels/isa.h): that set's table.
#include "kernels/isa_table.h"

namespace st::kernels::ST_ISA_NS {

extern const KernelTable kTable = {
#define ST_ISA_ENTRY(name) &name,
    ST_ISA_KERNELS(ST_ISA_ENTRY)
#undef ST_ISA_ENTRY
};

}  // namespace st::kernels::ST_ISA_NS
