-- Lmod module file for fluidimage (a template: adapt the paths and module names).
-- Install as <modulefiles>/fluidimage/<version>.lua, then `module load fluidimage`.
help([[
fluidimage: PIV and image processing of large series of fluid-mechanics images.
Commands: fluidimage piv|params|info|mean|monitor|synth ...; batch templates in $FLUIDIMAGE_HOME/slurm.
]])
whatis("Name: fluidimage")
whatis("Description: PIV of image series with a native FFTW core and MPI")

local version = myModuleVersion()
local root = pathJoin("/opt/fluidimage", version)   -- the built checkout (scripts/setup ran there)

-- The toolchain it was built with: the same MPI must be loaded at run time.
depends_on("nodejs/20")
depends_on("openmpi/4.1")
depends_on("fftw/3.3")

setenv("FLUIDIMAGE_HOME", root)
prepend_path("PATH", pathJoin(root, "bin"))
-- One pair per rank at a time under MPI: keep per-process thread pools small.
setenv("OMP_NUM_THREADS", "1")
setenv("MALLOC_ARENA_MAX", "2")
