# n8n access: one policy that may invoke the start and status functions and nothing else, and,
# opt-in, an IAM user (access key only when explicitly asked) and/or a role to carry it.

locals {
  invoke_policy = {
    Version = "2012-10-17"
    Statement = [{
      Sid    = "InvokeStartAndStatusOnly"
      Effect = "Allow"
      Action = "lambda:InvokeFunction"
      # The unqualified ARN, and its qualifiers (n8n's Lambda node sends Qualifier=$LATEST).
      Resource = flatten([for k in ["start", "status"] : [var.function_arns[k], "${var.function_arns[k]}:*"]])
    }]
  }
}

resource "aws_iam_policy" "invoke" {
  name        = "${var.name}-n8n-invoke"
  description = "${var.name}: invoke the start and status functions (for n8n)"
  policy      = jsonencode(local.invoke_policy)
}

resource "aws_iam_user" "n8n" {
  #checkov:skip=CKV_AWS_273:Opt-in (create_user): n8n's AWS credential needs a static access key; SSO cannot serve a headless workflow.
  count = var.create_user ? 1 : 0
  name  = "${var.name}-n8n"
}

resource "aws_iam_user_policy_attachment" "n8n" {
  #checkov:skip=CKV_AWS_40:Opt-in: n8n's user carries exactly one invoke-only policy; a group for one user adds nothing.
  count      = var.create_user ? 1 : 0
  user       = aws_iam_user.n8n[0].name
  policy_arn = aws_iam_policy.invoke.arn
}

resource "aws_iam_access_key" "n8n" {
  count = var.create_access_key ? 1 : 0
  user  = aws_iam_user.n8n[0].name
}

resource "aws_iam_user_policy_attachment" "existing" {
  #checkov:skip=CKV_AWS_40:Opt-in (attach_to_users): the user names an existing n8n user to receive the invoke-only policy.
  for_each   = toset(var.attach_to_users)
  user       = each.value
  policy_arn = aws_iam_policy.invoke.arn
}

resource "aws_iam_role" "n8n" {
  count       = length(var.role_trusted_arns) > 0 ? 1 : 0
  name        = "${var.name}-n8n"
  description = "${var.name}: assumed by n8n to invoke the start and status functions"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { AWS = var.role_trusted_arns }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy_attachment" "n8n" {
  count      = length(var.role_trusted_arns) > 0 ? 1 : 0
  role       = aws_iam_role.n8n[0].name
  policy_arn = aws_iam_policy.invoke.arn
}
