# Demo only: keeps `terraform test` between apply and destroy while `make demo` drives the stack.
# It writes the applied outputs to a file and waits for the demo to finish (demo/hold.py).
terraform {
  required_version = ">= 1.9"
}

variable "outputs" {
  description = "Outputs of the applied stack, handed to the demo."
  type        = any
}

variable "python" {
  description = "Python interpreter that runs demo/hold.py."
  type        = string
}

variable "repo_root" {
  description = "Absolute path of the repository."
  type        = string
}

variable "state_dir" {
  description = "Absolute path of this demo run's working directory."
  type        = string
}

resource "terraform_data" "hold" {
  input = var.outputs

  provisioner "local-exec" {
    working_dir = var.repo_root
    command     = "${var.python} -m demo.hold --outputs-file ${var.state_dir}/outputs.json --done-file ${var.state_dir}/done --outputs \"$OUTPUTS\""
    environment = {
      OUTPUTS = jsonencode(var.outputs)
    }
  }
}
