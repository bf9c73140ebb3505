--- Saving and loading tensors: ml.save, ml.load (safetensors files), ml.json and ml.log.
--
--     ml.save(model:state_dict(), "model.safetensors", {metadata = {epoch = "3"}})
--     local sd, meta = ml.load("model.safetensors")
--     model:load_state_dict(sd)
--
-- The files are Hugging Face's safetensors, laid out byte for byte as its reference
-- implementation writes them, so PyTorch (`safetensors.torch.load_file`) reads what moonml
-- writes and the other way round. Loading checks every size and offset of the file before
-- it allocates anything, and never runs code.
-- @module moonml.serialize
local json = require("moonml.json")

return function(ml, core)
  --- Writes tensors to a safetensors file, atomically (a temporary file beside it, then a
  -- rename: an error leaves the previous file as it was).
  -- @tparam table tensors names to tensors (a state dict), or an nn module (its state dict)
  -- @tparam string path
  -- @tparam[opt] table opts `metadata`: a table of strings stored in `__metadata__`;
  -- `dtypes`: file dtypes by name, e.g. `{["1.weight"] = "F16"}` (F32, F64, F16, BF16 for
  -- float tensors; I64, I32, I16, I8, U8, U16, U32, U64 for int64, range-checked; BOOL)
  -- @function moonml.save
  function ml.save(tensors, path, opts)
    if type(tensors) == "table" and not ml.is_tensor(tensors) and tensors._parameters ~= nil
        and type(tensors.state_dict) == "function" then
      tensors = tensors:state_dict()
    end
    return core.save(tensors, path, opts)
  end

  --- Reads a safetensors file: `local tensors, metadata = ml.load(path)`. F32, F64, I64 and
  -- BOOL load as they are; F16 and BF16 as float32; I32, I16, I8, U8, U16, U32, U64 as int64.
  -- A file that breaks the format is refused with `moonml.load: <path>: <what is wrong>`.
  -- @tparam string path
  -- @treturn table names to tensors
  -- @treturn table the metadata strings (empty when the file has none)
  -- @function moonml.load
  ml.load = core.load

  ml.json = json

  local tensor_log = core.methods.log
  --- Two things under one name: `ml.log(path, record)` with a file path appends `record` as
  -- one line of JSON (ml.json.log), and `ml.log(x)` with a tensor is the element-wise
  -- natural logarithm (x:log()), as every tensor method is also a module function.
  -- @param x a file path (string) or a tensor
  -- @param[opt] record the table to log, with a path
  -- @function moonml.log
  function ml.log(x, ...)
    if type(x) == "string" then
      return json.log(x, ...)
    end
    return tensor_log(x, ...)
  end
end
