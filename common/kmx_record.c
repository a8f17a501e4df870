/* placeholder: replaced by the real module */
#include "kmx_record.h"
typedef int kmx_placeholder_t;
